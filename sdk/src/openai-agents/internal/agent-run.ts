import { createContextKey, SpanKind, type Context, type Link } from '@opentelemetry/api';
import type { RequestContextImpl } from '../../context/internal/request-context.js';
import { recordError, requestContextOf } from '../../context/internal/request-scope.js';
import { inAgent, isInAgent, startAgentSpan, type StartedAgentSpan } from '../../tools/internal/agent-span.js';
import { GEN_AI } from '../../tools/internal/gen-ai.js';
import { reportOnce } from '../../tracing/internal/report.js';
import { getRuntime } from '../../tracing/internal/runtime.js';

/** Where an isotraceRunner() run keeps its state: in the OpenTelemetry context the SDK runs it in. */
const AGENT_RUN_KEY = createContextKey('isotrace.openai_agents.run');

/** Attributes of a `handoff {to}` span (the GenAI conventions have none for handoffs yet). */
export const HANDOFF = {
  fromAgent: 'isotrace.handoff.from_agent',
  toAgent: 'isotrace.handoff.to_agent',
} as const;

/** Span event on an agent span: a local tool of the agent ran without isotrace's audit. */
export const UNAUDITED_TOOL_EVENT = 'isotrace.unaudited_tool';

/** What the agent spans use of an Agents SDK Agent. */
export interface AgentLike {
  readonly name: string;
  readonly handoffDescription?: unknown;
  readonly model?: unknown;
}

/** What isotraceRunner() needs to know of a run's agent spans. */
export interface AgentRunOptions {
  readonly providerName: string;
  readonly conversationId: string | undefined;
}

/**
 * One isotraceRunner() run of one request: the `invoke_agent` span of the
 * agent that is running (one per agent, so a handoff ends one and the next
 * agent starts its own), the handoff spans between them, and the context its
 * tool calls run in. The SDK's lifecycle events drive it; the run's end (or
 * failure) ends whatever is still open.
 */
export class AgentRun {
  readonly owner: RequestContextImpl;
  readonly #parent: Context;
  readonly #options: AgentRunOptions;
  #current: { readonly agent: AgentLike; readonly started: StartedAgentSpan } | undefined;
  /** The handoff that leads to the next agent: its span links back to it. */
  #handoff: Link | undefined;
  #finished = false;

  constructor(owner: RequestContextImpl, parent: Context, options: AgentRunOptions) {
    this.owner = owner;
    this.#parent = parent;
    this.#options = options;
  }

  /** `agent_start`, and any event of an agent whose span is not open yet (a run resumed after an approval). */
  startAgent(agent: AgentLike): void {
    if (this.#finished || this.#current?.agent === agent) return;
    this.#endCurrent();
    const links = this.#handoff ? [this.#handoff] : undefined;
    this.#handoff = undefined;
    const started = startAgentSpan(
      {
        name: agent.name,
        description: nonEmpty(agent.handoffDescription),
        conversationId: this.#options.conversationId,
        providerName: this.#options.providerName,
        requestModel: nonEmpty(agent.model),
        links,
      },
      'an isotraceRunner() run',
      this.#parent,
    );
    this.#current = { agent, started };
  }

  /** `agent_handoff`: a `handoff {to}` span in the agent that hands off, whose own span then ends. */
  handoff(from: AgentLike, to: AgentLike): void {
    this.startAgent(from);
    const current = this.#current;
    if (!current) return;
    const attributes = { [GEN_AI.agentName]: from.name, [HANDOFF.fromAgent]: from.name, [HANDOFF.toAgent]: to.name };
    const span = getRuntime('an isotraceRunner() handoff').tracer.startSpan(`handoff ${to.name}`, { kind: SpanKind.INTERNAL, attributes }, current.started.context);
    span.end();
    this.#handoff = { context: span.spanContext() };
    this.#endCurrent();
  }

  /** `agent_end`: the agent gave the run's final output. */
  endAgent(agent: AgentLike): void {
    if (this.#current?.agent === agent) this.#endCurrent();
  }

  /**
   * `agent_tool_start`: the calling agent's span is open, and a local tool
   * isotraceTools() did not wrap is marked on it (and reported once): its call
   * runs unaudited, and nothing may read as if it had been checked.
   */
  toolStarting(agent: AgentLike, tool: { type?: unknown; name?: unknown }, audited: boolean): void {
    this.startAgent(agent);
    if (audited || tool.type === 'hosted_tool') return;
    const name = typeof tool.name === 'string' ? tool.name : String(tool.type);
    this.#current?.started.span.addEvent(UNAUDITED_TOOL_EVENT, { [GEN_AI.toolName]: name });
    reportOnce(`openai-agents-unaudited-${name}`, `the OpenAI Agents tool '${name}' of agent '${agent.name}' is not wrapped with isotraceTools(): its calls run without isotrace's tool span and audits.`);
  }

  /**
   * The context a tool call runs in: `active` with the running agent's span as
   * parent and the agent named on the tool span. A call made inside another
   * tool call of this agent (an `agent.asTool()` run) keeps its own parent.
   */
  toolContext(active: Context): Context {
    const current = this.#current;
    if (!current || isInAgent(active, current.started.agent)) return active;
    return inAgent(active, current.started.span, current.started.agent);
  }

  /** The run settled: ends the span still open, with the run's error if it failed. Later events change nothing. */
  finish(error?: unknown): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#current && error !== undefined && error !== null) recordError(this.#current.started.span, error);
    this.#endCurrent();
  }

  #endCurrent(): void {
    this.#current?.started.span.end();
    this.#current = undefined;
  }
}

/** `active` with `run` as its isotraceRunner() run. */
export function withAgentRun(active: Context, run: AgentRun): Context {
  return active.setValue(AGENT_RUN_KEY, run);
}

/** The isotraceRunner() run of the request active in `active`, if any (another request's run is never returned). */
export function agentRunOf(active: Context): AgentRun | undefined {
  const run = active.getValue(AGENT_RUN_KEY) as AgentRun | undefined;
  return run && requestContextOf(active) === run.owner ? run : undefined;
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}
