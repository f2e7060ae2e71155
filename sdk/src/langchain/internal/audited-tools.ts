import { trace } from '@opentelemetry/api';
import type { StructuredToolInterface } from '@langchain/core/tools';
import { tryGetRequestContext } from '../../context/internal/request-scope.js';
import type { RequestContext } from '../../context/types.js';
import { RequestContextMissingError, ToolDefinitionError } from '../../errors/errors.js';
import { defineTool } from '../../tools/internal/define-tool.js';
import { GEN_AI } from '../../tools/internal/gen-ai.js';
import { createToolSystem } from '../../tools/internal/tool-system.js';
import type { ToolCall, ToolDefinition, ToolSystem } from '../../tools/types.js';
import type { IsotraceToolsOptions } from '../types.js';

/** Marks a tool isotraceTools() made: wrapping it again must not run each call as two tool calls. */
const AUDITED = Symbol('isotrace.langchain.audited');

/** The per-call config LangChain hands a tool's `_call` (a RunnableConfig plus the model's tool call). */
interface ToolRunConfig {
  toolCall?: { id?: unknown };
  toolCallId?: unknown;
  signal?: unknown;
  metadata?: Record<string, unknown>;
}

/** What isotraceTools() uses of a LangChain tool: StructuredTool's (protected) `_call`, which `invoke()` and `call()` both reach after validating the input. */
interface CallableTool {
  readonly name: string;
  readonly description?: unknown;
  _call(arg: unknown, runManager: unknown, config?: ToolRunConfig): unknown;
}

/** One `_call` of LangChain on its way through the dispatcher to the original tool. */
interface PendingCall {
  readonly runManager: unknown;
  readonly config: ToolRunConfig;
}

/**
 * Makes LangChain tools audited isotrace tool calls: each call of a returned
 * tool (by `createAgent`, a LangGraph `ToolNode`, or `tool.invoke()`) runs
 * as an `execute_tool {name}` span of the request that made it, with
 * `gen_ai.tool.call.id` = the model's tool call id, the run-time isolation
 * audits at its start and end, `gen_ai.agent.name` when an agent named with
 * `createAgent({ name })` called it, and arguments/results recorded as
 * startTracing() (or `options`) says. A streaming tool (an `async *`
 * function) is traced over its whole consumption.
 *
 * The returned tools are new objects that inherit everything else (name,
 * schema, description, response format) from the originals, which stay
 * unchanged, and LangChain's own `invoke()` still validates the input, runs
 * the callbacks and builds the ToolMessage. Each request gets its own tool
 * system, made at its first call, so wrap the tools once, at module level.
 * A call outside any request rejects with RequestContextMissingError and the
 * tool never runs (an agent's ToolNode turns that, like any tool error, into
 * an error ToolMessage unless `handleToolErrors` is false; traceAgent() fails
 * the whole run instead). Throws TypeError for anything that is not a
 * LangChain StructuredTool (`tool()`, `DynamicTool`, a `StructuredTool`
 * subclass) or a bad option, ToolDefinitionError for two tools of one name.
 *
 * ```ts
 * const tools = isotraceTools([getWeather, searchDocs]);
 * const agent = createAgent({ model, tools, name: 'support' });
 * // per request:
 * await withRequestContext({ tenantId, userId }, () => agent.invoke({ messages }));
 * ```
 */
export function isotraceTools<T extends readonly StructuredToolInterface[]>(tools: T, options: IsotraceToolsOptions = {}): T {
  if (!Array.isArray(tools)) throw new TypeError('isotraceTools(tools): tools must be an array of LangChain tools.');
  checkOptions(options);
  return new AuditedToolSet(tools.map(checkedTool), options).tools as unknown as T;
}

/** The wrapped tools of one isotraceTools() call, and their tool system per request. */
class AuditedToolSet {
  readonly tools: CallableTool[];
  readonly #definitions: ToolDefinition[] = [];
  readonly #options: IsotraceToolsOptions;
  // Keyed by the request: a request's system goes with it; no request sees another's.
  readonly #systems = new WeakMap<RequestContext, ToolSystem>();
  // Keyed by the signal made for each call: what the dispatcher hands the tool back, so a call never gets another's config.
  readonly #calls = new WeakMap<AbortSignal, PendingCall>();

  constructor(tools: readonly CallableTool[], options: IsotraceToolsOptions) {
    this.#options = options;
    this.tools = tools.map((tool) => this.#wrap(tool));
    // Found here, not at some request's first call: a set the model cannot use must not get that far.
    const names = this.#definitions.map(({ name }) => name);
    const duplicate = names.find((name, index) => names.indexOf(name) !== index);
    if (duplicate !== undefined) throw new ToolDefinitionError(`isotraceTools: two tools are named '${duplicate}'.`);
  }

  #wrap(tool: CallableTool): CallableTool {
    if ((tool as unknown as Record<symbol, unknown>)[AUDITED]) return tool;
    this.#definitions.push(
      defineTool({
        name: tool.name,
        description: typeof tool.description === 'string' ? tool.description : '',
        execute: (args, call) => this.#runOriginal(tool, args, call),
      }),
    );
    // Inherits from the original, so LangChain's own invoke()/call() still run, with `this` the wrapper, and reach this _call.
    const wrapped = Object.create(tool) as CallableTool;
    Object.defineProperties(wrapped, {
      _call: { value: (arg: unknown, runManager: unknown, config?: ToolRunConfig) => this.#call(tool.name, arg, runManager, config ?? {}), writable: true, configurable: true },
      [AUDITED]: { value: true },
    });
    return wrapped;
  }

  /** LangChain's `_call`: a dispatcher call of the calling request's tool system. */
  async #call(name: string, arg: unknown, runManager: unknown, config: ToolRunConfig): Promise<unknown> {
    const owner = tryGetRequestContext();
    if (!owner) throw new RequestContextMissingError(`the LangChain tool '${name}'`);
    const { dispatcher } = this.#systemOf(owner);
    // A signal of this call's own (following LangChain's): the key under which the tool finds its config.
    const signal = config.signal instanceof AbortSignal ? AbortSignal.any([config.signal]) : new AbortController().signal;
    this.#calls.set(signal, { runManager, config });
    return dispatcher.execute(name, arg, { callId: callIdOf(config), signal });
  }

  /** Inside the tool span: the original `_call`, with LangChain's own arguments. */
  #runOriginal(tool: CallableTool, args: unknown, call: ToolCall): unknown {
    const pending = this.#calls.get(call.signal);
    if (!pending) throw new Error(`isotraceTools(): the tool '${tool.name}' runs only through LangChain (invoke()); this call has no LangChain config.`);
    this.#calls.delete(call.signal);
    const agentName = pending.config.metadata?.lc_agent_name;
    // The active span is this call's: createAgent({ name }) puts the agent's name in the run's metadata.
    if (typeof agentName === 'string' && agentName.length > 0) trace.getActiveSpan()?.setAttribute(GEN_AI.agentName, agentName);
    return tool._call(args, pending.runManager, pending.config);
  }

  #systemOf(owner: RequestContext): ToolSystem {
    let system = this.#systems.get(owner);
    if (!system) {
      system = createToolSystem(this.#definitions, this.#options);
      this.#systems.set(owner, system);
    }
    return system;
  }
}

/** The model's tool call id: on `config.toolCall` for `invoke(toolCall)`, on `config.toolCallId` from LangChain's ToolNode. */
function callIdOf(config: ToolRunConfig): string | undefined {
  const id = config.toolCall?.id ?? config.toolCallId;
  return typeof id === 'string' && id.length > 0 ? id : undefined;
}

function checkedTool(tool: unknown, index: number): CallableTool {
  const candidate = tool as Partial<CallableTool> | null;
  if (typeof candidate?._call !== 'function' || typeof candidate.name !== 'string' || candidate.name.length === 0) {
    throw new TypeError(
      `isotraceTools(tools): tools[${index}] is not a LangChain StructuredTool (made by tool(), DynamicTool or a StructuredTool subclass); ` +
        'tools a provider runs on its side never run here and need no wrapping.',
    );
  }
  return candidate as CallableTool;
}

function checkOptions(options: IsotraceToolsOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('isotraceTools(tools, options): options must be an object { recordToolArguments?, redact? }.');
  const { recordToolArguments, redact } = options;
  if (recordToolArguments !== undefined && typeof recordToolArguments !== 'boolean') throw new TypeError('isotraceTools(): options.recordToolArguments must be a boolean.');
  if (redact !== undefined && typeof redact !== 'function') throw new TypeError('isotraceTools(): options.redact must be a function (value, info) => value.');
}
