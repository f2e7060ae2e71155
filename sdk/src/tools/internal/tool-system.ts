import { context } from '@opentelemetry/api';
import { tryGetRequestContext } from '../../context/internal/request-scope.js';
import type { RequestContextImpl } from '../../context/internal/request-context.js';
import { RequestContextMissingError, ToolDefinitionError } from '../../errors/errors.js';
import { getRuntime } from '../../tracing/internal/runtime.js';
import type { ToolClass, ToolRegistry, ToolSystem, ToolSystemOptions } from '../types.js';
import { Dispatcher } from './dispatcher.js';
import { infoOf, OWNER_KEY, Tool } from './tool.js';

/**
 * Creates the current request's own tool system: a registry of fresh tool
 * instances and a dispatcher that runs them in audited `execute_tool` spans.
 * There is no global registry: make one per request (or per agent run inside it).
 *
 * Throws RequestContextMissingError outside a request, and
 * ToolDefinitionError for a class without `toolName`, a duplicate name, or
 * something that is not a Tool subclass.
 *
 * ```ts
 * await withRequestContext({ tenantId, userId }, async () => {
 *   const { dispatcher } = createToolSystem([Search, Weather]);
 *   const hits = await dispatcher.execute('search', { q: 'lamp' });
 * });
 * ```
 */
export function createToolSystem(toolClasses: readonly ToolClass[], options: ToolSystemOptions = {}): ToolSystem {
  const owner = tryGetRequestContext() as RequestContextImpl | undefined;
  if (!owner) throw new RequestContextMissingError('createToolSystem()');
  const runtime = getRuntime('createToolSystem()');
  if (!Array.isArray(toolClasses)) throw new ToolDefinitionError('createToolSystem(toolClasses): expected an array of Tool subclasses.');

  const registryId = `user_${owner.userId}_${owner.requestId}_${owner.nextToolSystemNumber()}`;
  const tools = new Map<string, Tool>();
  context.with(context.active().setValue(OWNER_KEY, owner), () => {
    for (const ToolClass of toolClasses) {
      const name = assertToolClass(ToolClass, tools);
      tools.set(name, new ToolClass());
    }
  });

  const registry: ToolRegistry = {
    registryId,
    get: (name) => tools.get(name),
    has: (name) => tools.has(name),
    list: () => [...tools.values()].map(infoOf),
  };
  const dispatcher = new Dispatcher(owner, registryId, tools, {
    recordToolArguments: options.recordToolArguments ?? runtime.recordToolArguments,
    redact: options.redact ?? runtime.redact,
  });
  return Object.freeze({ registryId, correlationId: owner.correlationId, registry, dispatcher, tools: Object.freeze([...tools.values()]) });
}

function assertToolClass(ToolClass: unknown, seen: Map<string, Tool>): string {
  if (typeof ToolClass !== 'function' || !(ToolClass.prototype instanceof Tool)) {
    throw new ToolDefinitionError(`createToolSystem: ${String((ToolClass as { name?: string })?.name ?? ToolClass)} is not a subclass of Tool.`);
  }
  const { toolName, type } = ToolClass as unknown as ToolClass;
  if (typeof toolName !== 'string' || toolName.length === 0) throw new ToolDefinitionError(`createToolSystem: ${ToolClass.name} has no static toolName.`);
  if (seen.has(toolName)) throw new ToolDefinitionError(`createToolSystem: two tools are named '${toolName}'.`);
  if (!['function', 'extension', 'datastore'].includes(type)) throw new ToolDefinitionError(`createToolSystem: ${ToolClass.name}.type must be 'function', 'extension' or 'datastore'.`);
  return toolName;
}
