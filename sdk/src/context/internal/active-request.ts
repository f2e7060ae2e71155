import type { Context } from '@opentelemetry/api';
import { REQUEST_CONTEXT_KEY } from './keys.js';
import type { RequestContextImpl } from './request-context.js';

/**
 * The request context stored in an OpenTelemetry context, if any. Its own
 * module (nothing but the key) so the audits can read the active request
 * without loading request-scope, which loads them.
 */
export function requestContextOf(otelContext: Context): RequestContextImpl | undefined {
  return otelContext.getValue(REQUEST_CONTEXT_KEY) as RequestContextImpl | undefined;
}
