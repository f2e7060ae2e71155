/** `isotrace/tools`: per-request tool systems whose every call is an audited GenAI `execute_tool` span. */
export { Tool } from './internal/tool.js';
export { defineTool } from './internal/define-tool.js';
export { createToolSystem } from './internal/tool-system.js';
export { invokeAgent } from './internal/agent-span.js';
export type {
  ExecuteOptions,
  InvokeAgentOptions,
  ToolCall,
  ToolClass,
  ToolDefinition,
  ToolDefinitionInit,
  ToolDispatcher,
  ToolFactory,
  ToolInfo,
  ToolRegistry,
  ToolSource,
  ToolSystem,
  ToolSystemOptions,
  ToolType,
} from './types.js';
export { ToolDefinitionError, UnknownToolError, IsolationViolationError, RequestContextMissingError } from '../errors/errors.js';
