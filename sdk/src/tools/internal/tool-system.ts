import { tryGetRequestContext } from '../../context/internal/request-scope.js';
import type { RequestContextImpl } from '../../context/internal/request-context.js';
import { RequestContextMissingError, ToolDefinitionError } from '../../errors/errors.js';
import { getRuntime } from '../../tracing/internal/runtime.js';
import type { ToolClass, ToolRegistry, ToolSource, ToolSystem, ToolSystemOptions } from '../types.js';
import { DefinedTool, ToolDefinitionImpl } from './define-tool.js';
import { Dispatcher } from './dispatcher.js';
import { bindToolOwner, Tool } from './tool.js';
import { infoOf } from './tool-info.js';

/**
 * Creates the current request's own tool system: a registry of fresh tool
 * instances and a dispatcher that runs them in audited `execute_tool` spans.
 * There is no global registry: make one per request (or per agent run inside it).
 *
 * Each tool is given as one of:
 * - a Tool subclass whose constructor takes no arguments (`Search`): a new instance per system;
 * - a defineTool() definition (`weather`): bound to this system's request;
 * - a factory `(ctx) => new Search(index)`, for tools with constructor
 *   arguments: called once per system with the owning request, and must
 *   return a new Tool instance.
 * The system binds its request to every instance it creates, so a tool's
 * owner never comes from whatever context is ambient.
 *
 * Throws RequestContextMissingError outside a request, and
 * ToolDefinitionError for a class without `toolName`, a duplicate name,
 * a class whose constructor declares parameters (give a factory instead),
 * something that is not a Tool subclass, definition or factory, or a factory
 * returning anything but a Tool instance no other tool system owns.
 *
 * ```ts
 * await withRequestContext({ tenantId, userId }, async () => {
 *   const { dispatcher } = createToolSystem([Search, weather, () => new Vault(config.vaultUrl)]);
 *   const hits = await dispatcher.execute('search', { q: 'lamp' }, { callId: toolCall.id });
 * });
 * ```
 */
export function createToolSystem(toolSources: readonly ToolSource[], options: ToolSystemOptions = {}): ToolSystem {
  const owner = tryGetRequestContext() as RequestContextImpl | undefined;
  if (!owner) throw new RequestContextMissingError('createToolSystem()');
  const runtime = getRuntime('createToolSystem()');
  if (!Array.isArray(toolSources)) throw new ToolDefinitionError('createToolSystem(tools): expected an array of Tool subclasses, defineTool() definitions or factories.');

  const registryId = `user_${owner.userId}_${owner.requestId}_${owner.nextToolSystemNumber()}`;
  const tools = new Map<string, Tool>();
  for (const source of toolSources) {
    const tool = instantiate(source, owner);
    const { name } = infoOf(tool);
    if (tools.has(name)) throw new ToolDefinitionError(`createToolSystem: two tools are named '${name}'.`);
    tools.set(name, tool);
  }

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

/** A new tool instance owned by `owner`, from a class, a definition or a factory. */
function instantiate(source: unknown, owner: RequestContextImpl): Tool {
  if (source instanceof ToolDefinitionImpl) return bound(new DefinedTool(source), owner);
  if (source instanceof Tool) {
    throw new ToolDefinitionError(`createToolSystem: got a ${source.constructor.name} instance; give the class, or a factory that makes a new instance per system: () => new ${source.constructor.name}(…).`);
  }
  if (typeof source !== 'function') throw new ToolDefinitionError(`createToolSystem: ${describe(source)} is not a Tool subclass, a defineTool() definition or a factory.`);
  if (source.prototype instanceof Tool) {
    assertToolClass(source as unknown as ToolClass);
    return bound(new (source as unknown as ToolClass)(), owner);
  }
  if (isClass(source as (...args: never[]) => unknown)) throw new ToolDefinitionError(`createToolSystem: ${source.name} is not a subclass of Tool.`);
  return fromFactory(source as (context: RequestContextImpl) => unknown, owner);
}

function fromFactory(factory: (context: RequestContextImpl) => unknown, owner: RequestContextImpl): Tool {
  const made = factory(owner);
  const what = `the factory ${factory.name || '(anonymous)'}`;
  if (!(made instanceof Tool)) throw new ToolDefinitionError(`createToolSystem: ${what} returned ${describe(made)}, not a Tool instance (return \`new YourTool(…)\`).`);
  assertToolClass(made.constructor as ToolClass, { constructorMayTakeArguments: true });
  if (!bindToolOwner(made, owner)) {
    // A shared instance would carry its first request into every later one.
    throw new ToolDefinitionError(
      `createToolSystem: ${what} returned a ${made.constructor.name} instance that already belongs to a tool system; return a new instance from every call.`,
    );
  }
  return made;
}

function bound(tool: Tool, owner: RequestContextImpl): Tool {
  bindToolOwner(tool, owner);
  return tool;
}

function assertToolClass(ToolClass: ToolClass, { constructorMayTakeArguments = false } = {}): void {
  const { toolName, type } = ToolClass;
  if (typeof toolName !== 'string' || toolName.length === 0) throw new ToolDefinitionError(`createToolSystem: ${ToolClass.name} has no static toolName.`);
  if (!['function', 'extension', 'datastore'].includes(type)) throw new ToolDefinitionError(`createToolSystem: ${ToolClass.name}.type must be 'function', 'extension' or 'datastore'.`);
  // `new ToolClass()` would silently pass undefined for each declared parameter.
  if (!constructorMayTakeArguments && ToolClass.length > 0) {
    throw new ToolDefinitionError(`createToolSystem: the constructor of ${ToolClass.name} takes arguments; give a factory instead: createToolSystem([() => new ${ToolClass.name}(…)]).`);
  }
}

function isClass(fn: (...args: never[]) => unknown): boolean {
  return /^class[\s{]/.test(Function.prototype.toString.call(fn));
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'function') return value.name || 'an anonymous function';
  if (typeof value === 'object') {
    const className = (value as object).constructor?.name;
    return className && className !== 'Object' ? `a ${className}` : 'an object';
  }
  return typeof value === 'string' ? `the string '${value}'` : String(value);
}
