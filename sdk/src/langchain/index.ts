/**
 * `isotrace/langchain`: LangChain.js tools as audited isotrace tool calls of
 * the current request, callback handlers that run in the request that caused
 * them (whatever LANGCHAIN_CALLBACKS_BACKGROUND says), and `invoke_agent`
 * spans for agent runs. Needs `@langchain/core` 1.x.
 */
export { isotraceTools } from './internal/audited-tools.js';
export { bindCallbacks } from './internal/bind-callbacks.js';
export { traceAgent } from './internal/trace-agent.js';
export type { InvocableAgent, IsotraceToolsOptions, TraceAgentOptions } from './types.js';
export { IsolationViolationError, RequestContextMissingError } from '../errors/errors.js';
