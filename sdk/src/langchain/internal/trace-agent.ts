import { context } from '@opentelemetry/api';
import { recordError } from '../../context/internal/request-scope.js';
import { startAgentSpan, type AgentSpanInit, type StartedAgentSpan } from '../../tools/internal/agent-span.js';
import { isStreamResult, traceStream } from '../../tools/internal/streaming.js';
import type { InvocableAgent, TraceAgentOptions } from '../types.js';

type AgentMethod = (input: unknown, config?: RunConfig) => Promise<unknown>;

/** The part of a LangChain RunnableConfig the agent span reads. */
interface RunConfig {
  configurable?: { thread_id?: unknown };
}

/** What traceAgent() reads of a createAgent() agent for its defaults. */
interface AgentOptions {
  options?: { name?: unknown; model?: unknown };
}

/**
 * The agent, whose `invoke()` and `stream()` each run inside an
 * `invoke_agent {name}` span (GenAI conventions, INTERNAL) of the current
 * request: `gen_ai.operation.name=invoke_agent`, `gen_ai.provider.name`,
 * `gen_ai.agent.name`, and `gen_ai.conversation.id` when the call gives a
 * LangGraph thread (`configurable.thread_id`; never made up). The model
 * calls and the tool spans (isotraceTools()) of the run are its children;
 * a failed run records its error. `stream()` resolves to an async iterator
 * over the same chunks and the span lasts until it is consumed, cancelled
 * or fails. Everything else is the agent's own.
 *
 * Called outside a request, `invoke()` and `stream()` reject with
 * RequestContextMissingError before the agent runs: an agent run belongs
 * to a request. Throws TypeError for an agent without `invoke()` or an
 * option that is not a non-empty string.
 *
 * ```ts
 * const agent = traceAgent(createAgent({ model, tools: isotraceTools(tools), name: 'support' }));
 * await withRequestContext({ tenantId, userId }, () => agent.invoke({ messages }, { configurable: { thread_id: conversationId } }));
 * ```
 */
export function traceAgent<A extends InvocableAgent>(agent: A, options: TraceAgentOptions = {}): A {
  if (typeof (agent as Partial<InvocableAgent> | null)?.invoke !== 'function') throw new TypeError('traceAgent(agent): agent must have an invoke(input, config) method (a createAgent() agent or any LangChain Runnable).');
  checkOption(options, 'name');
  checkOption(options, 'providerName');
  const span = agentSpanShape(agent as AgentOptions, options);
  return new Proxy(agent, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const method = (value as AgentMethod).bind(target);
      if (property === 'invoke') return (input: unknown, config?: RunConfig) => invokeInSpan(span, config, () => method(input, config));
      if (property === 'stream') return (input: unknown, config?: RunConfig) => streamInSpan(span, config, () => method(input, config));
      // Bound to the agent: createAgent() agents keep their graph in private fields.
      return method;
    },
  });
}

/** What every run of one agent says about it: its name and provider. */
type AgentSpanShape = Readonly<Pick<AgentSpanInit, 'name' | 'providerName'>>;

function agentSpanShape(agent: AgentOptions, options: TraceAgentOptions): AgentSpanShape {
  const ownName = agent.options?.name;
  const name = options.name ?? (typeof ownName === 'string' && ownName.length > 0 ? ownName : undefined);
  return { name, providerName: options.providerName ?? providerOf(agent.options?.model) };
}

/** `openai` from `'openai:gpt-4o'`, else the chat model's `_llmType()`, else `langchain`. */
function providerOf(model: unknown): string {
  if (typeof model === 'string') {
    const separator = model.indexOf(':');
    return separator > 0 ? model.slice(0, separator) : 'langchain';
  }
  try {
    const type = (model as { _llmType?: () => unknown } | undefined)?._llmType?.();
    return typeof type === 'string' && type.length > 0 ? type : 'langchain';
  } catch {
    return 'langchain';
  }
}

/** The run's agent span: the conversation is the run's LangGraph thread, else the request's (the shared helper's rule). */
function startRunSpan(shape: AgentSpanShape, config: RunConfig | undefined, what: string): StartedAgentSpan {
  const threadId = config?.configurable?.thread_id;
  return startAgentSpan({ ...shape, conversationId: typeof threadId === 'string' && threadId.length > 0 ? threadId : undefined }, what);
}

async function invokeInSpan(shape: AgentSpanShape, config: RunConfig | undefined, run: () => Promise<unknown>): Promise<unknown> {
  const { span, context: agentContext } = startRunSpan(shape, config, 'agent.invoke() of a traceAgent() agent');
  try {
    return await context.with(agentContext, run);
  } catch (error) {
    recordError(span, error);
    throw error;
  } finally {
    span.end();
  }
}

async function streamInSpan(shape: AgentSpanShape, config: RunConfig | undefined, run: () => Promise<unknown>): Promise<unknown> {
  const { span, context: agentContext } = startRunSpan(shape, config, 'agent.stream() of a traceAgent() agent');
  let stream: unknown;
  try {
    stream = await context.with(agentContext, run);
  } catch (error) {
    recordError(span, error);
    span.end();
    throw error;
  }
  const iterable = asAsyncIterable(stream);
  if (!isStreamResult(iterable)) {
    span.end();
    return stream;
  }
  let ended = false;
  return traceStream(iterable, {
    context: agentContext,
    span,
    end: (outcome, _items, error) => {
      if (ended) return;
      ended = true;
      span.setAttribute('isotrace.stream.outcome', outcome);
      if (outcome === 'failed') recordError(span, error);
      span.end();
    },
  });
}

/** Only the async-iterator face of LangGraph's stream (a ReadableStream that is also iterated with next()), so the traced result keeps next(). */
function asAsyncIterable(stream: unknown): unknown {
  const iterable = stream as Partial<AsyncIterable<unknown>> | null;
  if (typeof iterable?.[Symbol.asyncIterator] !== 'function') return stream;
  return { [Symbol.asyncIterator]: () => (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator]() };
}

function checkOption(options: TraceAgentOptions, key: keyof TraceAgentOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('traceAgent(agent, options): options must be an object { name?, providerName? }.');
  const value = options[key];
  if (value !== undefined && (typeof value !== 'string' || value.length === 0)) throw new TypeError(`traceAgent(agent, options): options.${key} must be a non-empty string.`);
}
