import { trace } from '@opentelemetry/api';
import type { StructuredToolInterface } from '@langchain/core/tools';
import { AuditedMark, AuditedToolSet, checkToolSetOptions } from '../../tools/internal/audited-tool-set.js';
import { GEN_AI } from '../../tools/internal/gen-ai.js';
import type { IsotraceToolsOptions } from '../types.js';

/** Marks a tool isotraceTools() made: wrapping it again must not run each call as two tool calls. */
const AUDITED = new AuditedMark('isotrace.langchain.audited');

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
  checkToolSetOptions(options);
  return new LangChainToolSet(tools.map(checkedTool), options).tools as unknown as T;
}

/** The wrapped tools of one isotraceTools() call; their tool system per request is the AuditedToolSet's. */
class LangChainToolSet {
  readonly tools: CallableTool[];
  readonly #audited: AuditedToolSet<PendingCall>;

  constructor(tools: readonly CallableTool[], options: IsotraceToolsOptions) {
    this.#audited = new AuditedToolSet(options);
    this.tools = tools.map((tool) => this.#wrap(tool));
    this.#audited.assertDistinctNames();
  }

  #wrap(tool: CallableTool): CallableTool {
    if (AUDITED.isOn(tool)) return tool;
    const notThroughLangChain = `isotraceTools(): the tool '${tool.name}' runs only through LangChain (invoke()); this call has no LangChain config.`;
    this.#audited.add(tool.name, tool.description, notThroughLangChain, (args, pending) => runOriginal(tool, args, pending));
    // Inherits from the original, so LangChain's own invoke()/call() still run, with `this` the wrapper, and reach this _call.
    const wrapped = Object.create(tool) as CallableTool;
    Object.defineProperty(wrapped, '_call', {
      value: (arg: unknown, runManager: unknown, config?: ToolRunConfig) => this.#call(tool.name, arg, runManager, config ?? {}),
      writable: true,
      configurable: true,
    });
    AUDITED.set(wrapped);
    return wrapped;
  }

  /** LangChain's `_call`: a dispatcher call of the calling request's tool system. */
  async #call(name: string, arg: unknown, runManager: unknown, config: ToolRunConfig): Promise<unknown> {
    const { dispatcher, signal } = this.#audited.open(`the LangChain tool '${name}'`, config.signal, { runManager, config });
    return dispatcher.execute(name, arg, { callId: callIdOf(config), signal });
  }
}

/** Inside the tool span: the original `_call`, with LangChain's own arguments. */
function runOriginal(tool: CallableTool, args: unknown, pending: PendingCall): unknown {
  const agentName = pending.config.metadata?.lc_agent_name;
  // The active span is this call's: createAgent({ name }) puts the agent's name in the run's metadata.
  if (typeof agentName === 'string' && agentName.length > 0) trace.getActiveSpan()?.setAttribute(GEN_AI.agentName, agentName);
  return tool._call(args, pending.runManager, pending.config);
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
