// Helpers shared by the LangChain adapter tests: a scripted fake model, an agent per request, span lookups.
import { AIMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import type { StructuredToolInterface } from '@langchain/core/tools';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { createAgent } from 'langchain';

/** One tool call the fake model asks for. */
export interface ScriptedCall {
  name: string;
  args: Record<string, unknown>;
  id: string;
}

/** An agent whose fake model asks for `calls` (in parallel, one AI message), then answers `done <tag>`. */
export function scriptedAgent(tools: readonly StructuredToolInterface[], calls: readonly ScriptedCall[], tag: string, name?: string) {
  const model = fakeModel()
    .respondWithTools(calls.map((call) => ({ ...call })))
    .respond(new AIMessage(`done ${tag}`));
  return createAgent({ model, tools: [...tools], ...(name === undefined ? {} : { name }) });
}

/** The user's message every test agent gets. */
export const USER_TURN = { messages: [{ role: 'user', content: 'weather please' }] };

/** Finished spans whose `gen_ai.operation.name` is `operation`. */
export function spansOf(spans: readonly ReadableSpan[], operation: 'execute_tool' | 'invoke_agent'): ReadableSpan[] {
  return spans.filter((span) => span.attributes['gen_ai.operation.name'] === operation);
}

export function parentIdOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

/** The request span of request `requestId` among `spans`. */
export function requestSpanOf(spans: readonly ReadableSpan[], requestId: string): ReadableSpan | undefined {
  return spans.find((span) => span.attributes['isotrace.request_span'] === true && span.attributes['isotrace.request_id'] === requestId);
}
