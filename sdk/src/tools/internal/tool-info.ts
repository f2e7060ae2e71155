import type { ToolClass, ToolInfo } from '../types.js';
import { DefinedTool } from './define-tool.js';
import type { Tool } from './tool.js';

/** What a tool instance says about itself: its definition's fields, or its class's statics. */
export function infoOf(tool: Tool): ToolInfo {
  if (tool instanceof DefinedTool) return tool.info;
  const ToolClass = tool.constructor as ToolClass;
  return { name: ToolClass.toolName, description: ToolClass.description ?? '', type: ToolClass.type ?? 'function' };
}
