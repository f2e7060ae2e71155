import { tryGetRequestContext } from '../../context/internal/request-scope.js';
import { RequestContextMissingError } from '../../errors/errors.js';
import type { SharedState } from '../types.js';

/**
 * The SharedState of the current request's tenant and user.
 * Throws RequestContextMissingError outside a request.
 */
export function getSharedState(): SharedState {
  const ctx = tryGetRequestContext();
  if (!ctx) throw new RequestContextMissingError('getSharedState()');
  return ctx.sharedState;
}
