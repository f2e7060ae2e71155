/**
 * `isotrace/ai-sdk`: Vercel AI SDK 7 tools that run as audited isotrace tool
 * calls of the request that called generateText() / streamText().
 */
export { isotraceTools } from './internal/isotrace-tools.js';
export type { IsotraceToolsOptions } from './types.js';
export { RequestContextMissingError, IsolationViolationError } from '../errors/errors.js';
