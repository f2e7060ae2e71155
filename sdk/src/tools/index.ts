/** `isotrace/tools`: per-request tool systems whose every call is an audited GenAI `execute_tool` span. */
export { Tool } from './internal/tool.js';
export { createToolSystem } from './internal/tool-system.js';
export type { ExecuteOptions, ToolClass, ToolDispatcher, ToolInfo, ToolRegistry, ToolSystem, ToolSystemOptions, ToolType } from './types.js';
export { ToolDefinitionError, UnknownToolError, IsolationViolationError, RequestContextMissingError } from '../errors/errors.js';
