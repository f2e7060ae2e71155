import { context } from '@opentelemetry/api';
import type { Tool as AgentsTool } from '@openai/agents-core';
import { tryGetRequestContext } from '../../context/internal/request-scope.js';
import type { RequestContext } from '../../context/types.js';
import { RequestContextMissingError, ToolDefinitionError } from '../../errors/errors.js';
import { defineTool } from '../../tools/internal/define-tool.js';
import { createToolSystem } from '../../tools/internal/tool-system.js';
import type { ToolCall, ToolDefinition, ToolSystem } from '../../tools/types.js';
import type { IsotraceToolsOptions } from '../types.js';
import { agentRunOf } from './agent-run.js';

/** Marks a tool isotraceTools() made: wrapping it again must not run each call as two tool calls. */
const AUDITED = Symbol('isotrace.openai_agents.audited');

/** The third argument the Agents SDK passes a function tool's `invoke` (its ToolCallDetails). */
interface CallDetails {
  toolCall?: { callId?: unknown };
  signal?: unknown;
}

type Invoke = (runContext: unknown, input: string, details?: CallDetails) => Promise<unknown>;

/** What isotraceTools() uses of an Agents SDK FunctionTool (`tool()`, `agent.asTool()`). */
interface FunctionToolLike {
  readonly type: 'function';
  readonly name: string;
  readonly description?: unknown;
  readonly invoke: Invoke;
}

/** One `invoke` of the Agents SDK on its way through the dispatcher to the original tool. */
interface PendingCall {
  readonly runContext: unknown;
  readonly input: string;
  readonly details: CallDetails | undefined;
}

/**
 * Makes OpenAI Agents SDK function tools audited isotrace tool calls: each
 * call a run makes (`run()`, a `Runner`, isotraceRunner()) runs as an
 * `execute_tool {name}` span of the request that made the run, with
 * `gen_ai.tool.call.id` = the model's call id, the run-time isolation audits
 * at its start and end, the run's AbortSignal, and arguments/results recorded
 * as startTracing() (or `options`) says. Under an isotraceRunner() run the
 * span is a child of the agent's `invoke_agent` span and carries
 * `gen_ai.agent.name`.
 *
 * The returned tools are copies whose `invoke` goes through the calling
 * request's own tool system (made at its first call) and then to the
 * original `invoke`, which still parses and validates the input, runs the
 * tool and turns its errors into model-visible results as the SDK does; the
 * originals are not changed. Wrap the tools once, at module level, where the
 * agent is defined: a module-level agent serves every request. Hosted tools
 * (`webSearchTool()`, …) run at the provider and are returned as they are.
 *
 * A call outside any request rejects with RequestContextMissingError before
 * the tool runs (the run fails; the SDK does not hand this error to the
 * model). Throws TypeError for anything that is not an Agents SDK tool, for a
 * local tool that is not a function tool (computer, shell, apply_patch: they
 * cannot run as audited calls) or a bad option, and ToolDefinitionError for
 * two tools of one name.
 *
 * ```ts
 * const getWeather = tool({ name: 'get_weather', parameters: z.object({ city: z.string() }), execute: weatherFor });
 * export const agent = new Agent({ name: 'weather', tools: isotraceTools([getWeather]) });
 * // per request:
 * await withRequestContext({ tenantId, userId }, () => runner.run(agent, question));
 * ```
 */
export function isotraceTools<T extends readonly AgentsTool<never>[]>(tools: T, options: IsotraceToolsOptions = {}): T {
  if (!Array.isArray(tools)) throw new TypeError('isotraceTools(tools): tools must be an array of OpenAI Agents SDK tools.');
  checkOptions(options);
  return new AuditedToolSet(tools.map(checkedTool), options).tools as unknown as T;
}

/** Whether `tool` is one isotraceTools() made (its calls are audited). */
export function isAuditedTool(tool: unknown): boolean {
  return typeof tool === 'object' && tool !== null && (tool as Record<symbol, unknown>)[AUDITED] === true;
}

/** The wrapped tools of one isotraceTools() call, and their tool system per request. */
class AuditedToolSet {
  readonly tools: unknown[];
  readonly #definitions: ToolDefinition[] = [];
  readonly #options: IsotraceToolsOptions;
  // Keyed by the request: a request's system goes with it; no request sees another's.
  readonly #systems = new WeakMap<RequestContext, ToolSystem>();
  // Keyed by the signal made for each call: what the dispatcher hands the tool back, so a call never gets another's input.
  readonly #calls = new WeakMap<AbortSignal, PendingCall>();

  constructor(tools: readonly unknown[], options: IsotraceToolsOptions) {
    this.#options = options;
    this.tools = tools.map((tool) => (isFunctionTool(tool) ? this.#wrap(tool) : tool));
    // Found here, not at some request's first call: a set the model cannot use must not get that far.
    const names = this.#definitions.map(({ name }) => name);
    const duplicate = names.find((name, index) => names.indexOf(name) !== index);
    if (duplicate !== undefined) throw new ToolDefinitionError(`isotraceTools: two tools are named '${duplicate}'.`);
  }

  #wrap(tool: FunctionToolLike): FunctionToolLike {
    if (isAuditedTool(tool)) return tool;
    this.#definitions.push(
      defineTool({
        name: tool.name,
        description: typeof tool.description === 'string' ? tool.description : '',
        execute: (_args, call) => this.#runOriginal(tool, call),
      }),
    );
    // A copy, not the original changed: the SDK reads every other field (schema, approval, timeout) from it as before.
    const wrapped: FunctionToolLike = { ...tool, invoke: (runContext, input, details) => this.#call(tool.name, runContext, input, details) };
    Object.defineProperty(wrapped, AUDITED, { value: true });
    return wrapped;
  }

  /** The SDK's `invoke`: a dispatcher call of the calling request's tool system, under the run's agent span. */
  async #call(name: string, runContext: unknown, input: string, details: CallDetails | undefined): Promise<unknown> {
    const active = context.active();
    const owner = tryGetRequestContext();
    if (!owner) throw new RequestContextMissingError(`the OpenAI Agents tool '${name}'`);
    const { dispatcher } = this.#systemOf(owner);
    // A signal of this call's own (following the SDK's): the key under which the tool finds its input.
    const signal = details?.signal instanceof AbortSignal ? AbortSignal.any([details.signal]) : new AbortController().signal;
    this.#calls.set(signal, { runContext, input, details });
    const callContext = agentRunOf(active)?.toolContext(active) ?? active;
    return context.with(callContext, () => dispatcher.execute(name, argumentsOf(input), { callId: callIdOf(details), signal }));
  }

  /** Inside the tool span: the original `invoke`, with the SDK's own arguments. */
  #runOriginal(tool: FunctionToolLike, call: ToolCall): Promise<unknown> {
    const pending = this.#calls.get(call.signal);
    if (!pending) throw new Error(`isotraceTools(): the tool '${tool.name}' runs only through the Agents SDK (its invoke()); this call has no SDK input.`);
    this.#calls.delete(call.signal);
    return tool.invoke(pending.runContext, pending.input, pending.details);
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

/** The model's call id, from the SDK's `details.toolCall`. */
function callIdOf(details: CallDetails | undefined): string | undefined {
  const id = details?.toolCall?.callId;
  return typeof id === 'string' && id.length > 0 ? id : undefined;
}

/** The arguments as recorded on the span: the model's JSON parsed, else the text as it came. */
function argumentsOf(input: string): unknown {
  try {
    return JSON.parse(input) as unknown;
  } catch {
    return input;
  }
}

function isFunctionTool(tool: unknown): tool is FunctionToolLike {
  return (tool as { type?: unknown }).type === 'function';
}

function checkedTool(tool: unknown, index: number): unknown {
  const candidate = tool as Partial<FunctionToolLike> | null;
  const type = typeof candidate === 'object' && candidate !== null ? (candidate as { type?: unknown }).type : undefined;
  if (type === 'hosted_tool') return tool;
  if (type === 'function' && typeof candidate?.invoke === 'function' && typeof candidate.name === 'string' && candidate.name.length > 0) return tool;
  if (typeof type === 'string' && type !== 'function') {
    throw new TypeError(
      `isotraceTools(tools): tools[${index}] is a '${type}' tool; only function tools (tool(), agent.asTool()) run as audited isotrace tool calls. ` +
        'Hosted tools pass through unchanged; keep other local tools out of the list you wrap.',
    );
  }
  throw new TypeError(`isotraceTools(tools): tools[${index}] is not an OpenAI Agents SDK tool (made by tool(), agent.asTool() or a hosted tool helper).`);
}

function checkOptions(options: IsotraceToolsOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('isotraceTools(tools, options): options must be an object { recordToolArguments?, redact? }.');
  const { recordToolArguments, redact } = options;
  if (recordToolArguments !== undefined && typeof recordToolArguments !== 'boolean') throw new TypeError('isotraceTools(): options.recordToolArguments must be a boolean.');
  if (redact !== undefined && typeof redact !== 'function') throw new TypeError('isotraceTools(): options.redact must be a function (value, info) => value.');
}
