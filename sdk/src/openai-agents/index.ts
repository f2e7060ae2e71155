/**
 * `isotrace/openai-agents`: OpenAI Agents SDK (`@openai/agents-core` 0.20+)
 * function tools as audited isotrace tool calls of the current request, and
 * a Runner that traces each agent of a run as an `invoke_agent` span, with
 * handoffs as spans between them. Module-level agents and runners serve every
 * request.
 */
export { isotraceTools } from './internal/audited-tools.js';
export { isotraceRunner } from './internal/isotrace-runner.js';
export type { IsotraceRunnerOptions, IsotraceToolsOptions } from './types.js';
export { IsolationViolationError, RequestContextMissingError } from '../errors/errors.js';
