import type { RequestContextImpl } from '../../context/internal/request-context.js';
import { ToolDefinitionError } from '../../errors/errors.js';
import type { ToolCall, ToolDefinition, ToolDefinitionInit, ToolInfo, ToolType } from '../types.js';
import { Tool } from './tool.js';
import { ToolCallImpl } from './tool-call.js';
import { randomUuid } from '../../context/internal/random-uuid.js';

const TOOL_TYPES: readonly ToolType[] = ['function', 'extension', 'datastore'];

/** What defineTool() returns (typed as ToolDefinition): frozen, holding no request state. */
export class ToolDefinitionImpl {
  readonly name: string;
  readonly description: string;
  readonly type: ToolType;
  readonly execute: (args: unknown, call: ToolCall) => unknown;

  constructor(init: ToolDefinitionInit) {
    this.name = init.name;
    this.description = init.description ?? '';
    this.type = init.type ?? 'function';
    this.execute = init.execute;
    Object.freeze(this);
  }
}

/**
 * Defines a function tool: a module-level, immutable definition that
 * createToolSystem() accepts beside Tool classes and binds to its own
 * request. `execute(args, { callId, signal, context, emit })` runs inside the
 * `execute_tool` span with the same audits, attributes and recording as a
 * Tool class's `run`; `context` is the tool system's request, never the
 * ambient one. An `async *execute()` generator (or a returned stream) is a
 * streaming tool. Args and Result are inferred from `execute`.
 *
 * Throws ToolDefinitionError for an empty or missing `name`, a non-string
 * `description`, a `type` other than 'function' | 'extension' | 'datastore',
 * or a missing `execute`.
 *
 * ```ts
 * export const weather = defineTool({
 *   name: 'weather',
 *   description: 'Current weather for a city',
 *   async execute({ city }: { city: string }, { signal, context }) {
 *     const response = await fetch(`${WEATHER_URL}?city=${encodeURIComponent(city)}&tenant=${context.tenantId}`, { signal });
 *     return (await response.json()) as { tempC: number };
 *   },
 * });
 * // inside a request:
 * const { dispatcher } = createToolSystem([Search, weather]);
 * await dispatcher.execute('weather', { city: 'Oslo' }, { callId: toolCall.id, signal });
 * ```
 */
export function defineTool<Args = unknown, Result = unknown>(init: ToolDefinitionInit<Args, Result>): ToolDefinition<Args, Result> {
  if (typeof init !== 'object' || init === null) throw new ToolDefinitionError('defineTool(init): expected an object { name, description?, type?, execute }.');
  const { name, description, type, execute } = init;
  if (typeof name !== 'string' || name.length === 0) throw new ToolDefinitionError('defineTool: `name` must be a non-empty string.');
  if (description !== undefined && typeof description !== 'string') throw new ToolDefinitionError(`defineTool: '${name}'.description must be a string.`);
  if (type !== undefined && !TOOL_TYPES.includes(type)) throw new ToolDefinitionError(`defineTool: '${name}'.type must be 'function', 'extension' or 'datastore'.`);
  if (typeof execute !== 'function') throw new ToolDefinitionError(`defineTool: '${name}'.execute must be a function (args, { callId, signal, context }) => result.`);
  return new ToolDefinitionImpl(init as ToolDefinitionInit) as unknown as ToolDefinition<Args, Result>;
}

/** A definition bound to one tool system: the Tool instance its registry holds. */
export class DefinedTool extends Tool {
  readonly #definition: ToolDefinitionImpl;

  constructor(definition: ToolDefinitionImpl) {
    super();
    this.#definition = definition;
  }

  get info(): ToolInfo {
    const { name, description, type } = this.#definition;
    return { name, description, type };
  }

  /** The dispatcher passes the call; a direct call (no span) gets a generated id, a never-aborting signal and this tool's owner. */
  run(args: unknown, call?: ToolCall): unknown {
    return this.#definition.execute(args, call ?? new ToolCallImpl(`call_${randomUuid()}`, this.context as RequestContextImpl, undefined));
  }
}
