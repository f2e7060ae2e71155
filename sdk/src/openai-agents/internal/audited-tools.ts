import { context } from '@opentelemetry/api';
import type { Tool as AgentsTool } from '@openai/agents-core';
import { AuditedMark, AuditedToolSet, checkToolSetOptions } from '../../tools/internal/audited-tool-set.js';
import type { IsotraceToolsOptions } from '../types.js';
import { agentRunOf } from './agent-run.js';

/** Marks a tool isotraceTools() made: wrapping it again must not run each call as two tool calls. */
const AUDITED = new AuditedMark('isotrace.openai_agents.audited');

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
  checkToolSetOptions(options);
  return new AgentsToolSet(tools.map(checkedTool), options).tools as unknown as T;
}

/** Whether `tool` is one isotraceTools() made (its calls are audited). */
export function isAuditedTool(tool: unknown): boolean {
  return AUDITED.isOn(tool);
}

/** The wrapped tools of one isotraceTools() call; their tool system per request is the AuditedToolSet's. */
class AgentsToolSet {
  readonly tools: unknown[];
  readonly #audited: AuditedToolSet<PendingCall>;

  constructor(tools: readonly unknown[], options: IsotraceToolsOptions) {
    this.#audited = new AuditedToolSet(options);
    this.tools = tools.map((tool) => (isFunctionTool(tool) ? this.#wrap(tool) : tool));
    this.#audited.assertDistinctNames();
  }

  #wrap(tool: FunctionToolLike): FunctionToolLike {
    if (isAuditedTool(tool)) return tool;
    const notThroughSdk = `isotraceTools(): the tool '${tool.name}' runs only through the Agents SDK (its invoke()); this call has no SDK input.`;
    // Inside the tool span: the original `invoke`, with the SDK's own arguments.
    this.#audited.add(tool.name, tool.description, notThroughSdk, (_args, pending) => tool.invoke(pending.runContext, pending.input, pending.details));
    // A copy, not the original changed: the SDK reads every other field (schema, approval, timeout) from it as before.
    const wrapped: FunctionToolLike = { ...tool, invoke: (runContext, input, details) => this.#call(tool.name, runContext, input, details) };
    AUDITED.set(wrapped);
    return wrapped;
  }

  /** The SDK's `invoke`: a dispatcher call of the calling request's tool system, under the run's agent span. */
  async #call(name: string, runContext: unknown, input: string, details: CallDetails | undefined): Promise<unknown> {
    const active = context.active();
    const { dispatcher, signal } = this.#audited.open(`the OpenAI Agents tool '${name}'`, details?.signal, { runContext, input, details });
    const callContext = agentRunOf(active)?.toolContext(active) ?? active;
    return context.with(callContext, () => dispatcher.execute(name, argumentsOf(input), { callId: callIdOf(details), signal }));
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
