import { context, createContextKey, SpanKind, trace, type Attributes, type Context, type Link, type Span } from '@opentelemetry/api';
import type { RequestContextImpl } from '../../context/internal/request-context.js';
import { recordError, requestContextOf } from '../../context/internal/request-scope.js';
import { RequestContextMissingError } from '../../errors/errors.js';
import { getRuntime } from '../../tracing/internal/runtime.js';
import type { InvokeAgentOptions } from '../types.js';
import { GEN_AI, INVOKE_AGENT } from './gen-ai.js';

/** Where the running agent lives in the OpenTelemetry context, beside its span. */
const ACTIVE_AGENT_KEY = createContextKey('isotrace.agent');

/** The agent whose `invoke_agent` span is active: what tool spans under it say about it. */
export interface ActiveAgent {
  /** The request that runs the agent: another request's tool system gets nothing from it. */
  readonly owner: RequestContextImpl;
  readonly name: string | undefined;
  readonly id: string | undefined;
  readonly conversationId: string | undefined;
}

/** What an `invoke_agent` span says about its agent (the adapters fill in what their framework knows). */
export interface AgentSpanInit {
  name?: string | undefined;
  id?: string | undefined;
  description?: string | undefined;
  conversationId?: string | undefined;
  providerName?: string | undefined;
  /** `gen_ai.request.model`, when the agent names its model. */
  requestModel?: string | undefined;
  links?: Link[];
}

/** A started `invoke_agent` span and the context that makes it (and its agent) active. */
export interface StartedAgentSpan {
  readonly span: Span;
  readonly agent: ActiveAgent;
  readonly context: Context;
}

/**
 * Starts an `invoke_agent {name}` span (INTERNAL) of the request bound in
 * `parent`, with the attributes the GenAI conventions want at start.
 * `gen_ai.conversation.id` is the init's, else the request's: never made up.
 * Throws RequestContextMissingError outside a request: an agent run belongs to one.
 */
export function startAgentSpan(init: AgentSpanInit, what: string, parent: Context = context.active()): StartedAgentSpan {
  const owner = requestContextOf(parent);
  if (!owner) throw new RequestContextMissingError(what);
  const { tracer } = getRuntime(what);
  const agent: ActiveAgent = { owner, name: init.name, id: init.id, conversationId: init.conversationId ?? owner.conversationId };
  const attributes: Attributes = { [GEN_AI.operationName]: INVOKE_AGENT };
  if (init.providerName !== undefined) attributes[GEN_AI.providerName] = init.providerName;
  if (agent.name !== undefined) attributes[GEN_AI.agentName] = agent.name;
  if (agent.id !== undefined) attributes[GEN_AI.agentId] = agent.id;
  if (init.description !== undefined) attributes[GEN_AI.agentDescription] = init.description;
  if (agent.conversationId !== undefined) attributes[GEN_AI.conversationId] = agent.conversationId;
  if (init.requestModel !== undefined) attributes[GEN_AI.requestModel] = init.requestModel;
  const name = agent.name === undefined ? INVOKE_AGENT : `${INVOKE_AGENT} ${agent.name}`;
  const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes, links: init.links }, parent);
  return { span, agent, context: inAgent(parent, span, agent) };
}

/** `parent` with `span` active and `agent` as the agent its tool calls run under. */
export function inAgent(parent: Context, span: Span, agent: ActiveAgent): Context {
  return trace.setSpan(parent, span).setValue(ACTIVE_AGENT_KEY, agent);
}

/** Whether `agent` is the agent active in `active` (code already running inside it). */
export function isInAgent(active: Context, agent: ActiveAgent): boolean {
  return active.getValue(ACTIVE_AGENT_KEY) === agent;
}

/**
 * What a tool span of `owner`'s tool system, started in `active`, says about
 * its agent and conversation: `gen_ai.agent.name` / `.id` and
 * `gen_ai.conversation.id` of the agent running in the same request, else the
 * request's conversation id; undefined when there is nothing to say.
 */
export function agentAttributesFor(active: Context, owner: RequestContextImpl): Attributes | undefined {
  const agent = active.getValue(ACTIVE_AGENT_KEY) as ActiveAgent | undefined;
  // An agent of another request (a tool system used from a nested request) says nothing about this call.
  if (agent?.owner !== owner) return owner.conversationId === undefined ? undefined : { [GEN_AI.conversationId]: owner.conversationId };
  const attributes: Attributes = {};
  if (agent.name !== undefined) attributes[GEN_AI.agentName] = agent.name;
  if (agent.id !== undefined) attributes[GEN_AI.agentId] = agent.id;
  if (agent.conversationId !== undefined) attributes[GEN_AI.conversationId] = agent.conversationId;
  return attributes;
}

/**
 * Runs `fn` as one run of an agent: inside an `invoke_agent {name}` span
 * (GenAI conventions, kind INTERNAL) of the current request, for agent loops
 * written by hand. The span carries `gen_ai.operation.name=invoke_agent`,
 * `gen_ai.agent.name` (and `.id`, `.description`, `gen_ai.provider.name`
 * when given) and `gen_ai.conversation.id` when `options.conversationId` or
 * the request's `conversationId` gives one (never a made-up id). Every tool
 * call the run makes through a tool system of the same request is a child
 * span that carries `gen_ai.agent.name` (and `gen_ai.agent.id`); a model call
 * your client traces is a child too. The span ends when `fn` settles and
 * records its error.
 *
 * Resolves to what `fn` returns. Rejects with RequestContextMissingError
 * outside a request (before `fn` runs), TypeError for a missing `name` or an
 * option that is not a non-empty string, and with whatever `fn` throws.
 *
 * ```ts
 * await withRequestContext({ tenantId, userId, conversationId: chat.id }, () =>
 *   invokeAgent({ name: 'support', providerName: 'openai' }, async () => {
 *     const { dispatcher } = createToolSystem([search, weather]);
 *     for (const call of await model.toolCalls(messages)) {
 *       messages.push(await dispatcher.execute(call.name, call.args, { callId: call.id }));
 *     }
 *   }),
 * );
 * ```
 */
export async function invokeAgent<T>(options: InvokeAgentOptions, fn: () => T | Promise<T>): Promise<T> {
  checkInvokeAgentOptions(options);
  if (typeof fn !== 'function') throw new TypeError('invokeAgent(options, fn): fn must be a function.');
  const { name, id, description, conversationId, providerName } = options;
  const { span, context: agentContext } = startAgentSpan({ name, id, description, conversationId, providerName }, 'invokeAgent()');
  try {
    return await context.with(agentContext, fn);
  } catch (error) {
    recordError(span, error);
    throw error;
  } finally {
    span.end();
  }
}

const OPTIONAL_STRINGS = ['id', 'description', 'conversationId', 'providerName'] as const;

function checkInvokeAgentOptions(options: InvokeAgentOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('invokeAgent(options, fn): options must be an object { name, id?, description?, conversationId?, providerName? }.');
  if (typeof options.name !== 'string' || options.name.length === 0) throw new TypeError('invokeAgent(): options.name must be a non-empty string (the agent’s name).');
  for (const key of OPTIONAL_STRINGS) {
    const value = options[key];
    if (value !== undefined && (typeof value !== 'string' || value.length === 0)) throw new TypeError(`invokeAgent(): options.${key} must be a non-empty string when given.`);
  }
}
