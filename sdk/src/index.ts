/** `isotrace`: request context, SharedState access, variables and tracing set-up. */
export { startTracing } from './tracing/internal/start-tracing.js';
export type { CallbackAuditOptions, ExportStats, PropagationTarget, RedactInfo, StartedTracing, Tracing, TracingOptions } from './tracing/types.js';
export {
  bindToRequest,
  getFromContext,
  getRequestContext,
  tryGetRequestContext,
  updateRequestContext,
  withRequestContext,
} from './context/internal/request-scope.js';
export type { RequestContext, RequestContextInit, RequestContextSnapshot, RequestContextValues, ValueKey } from './context/types.js';
export { emitProgress, getEventStream } from './events/internal/emit.js';
export type { EventOutcome, EventStream, ProgressEvent } from './events/types.js';
export { getSharedState } from './shared-state/internal/get-shared-state.js';
export type { JsonValue, SharedState } from './shared-state/types.js';
export { expandVariables } from './variables/internal/expand-variables.js';
export { loadConfig } from './variables/internal/load-config.js';
export { parseConfig } from './variables/internal/parse-config.js';
export type { ConfigOptions, EnvAccess, ExpandOptions } from './variables/types.js';
export {
  ConfigError,
  IsolationViolationError,
  IsotraceError,
  IsotraceSetupError,
  RequestContextMissingError,
  SharedStateConflictError,
  SharedStateUnavailableError,
  SharedStateValueError,
  TracingAlreadyStartedError,
  TracingNotStartedError,
  UnresolvedVariableError,
} from './errors/errors.js';
