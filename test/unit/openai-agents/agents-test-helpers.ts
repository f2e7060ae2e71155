// Helpers shared by the OpenAI Agents adapter tests: span lookups and a stateless scripted model.
import type { ModelRequest } from '@openai/agents-core';
import { modelResponder, ScriptedModel, type RecordedModelCall, type ScriptedModelResponse } from '@openai/agents-core/testing';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';

/** Finished spans whose `gen_ai.operation.name` is `operation`. */
export function spansOf(spans: readonly ReadableSpan[], operation: 'execute_tool' | 'invoke_agent'): ReadableSpan[] {
  return spans.filter((span) => span.attributes['gen_ai.operation.name'] === operation);
}

export function parentIdOf(span: ReadableSpan | undefined): string | undefined {
  return span?.parentSpanContext?.spanId;
}

export function idOf(span: ReadableSpan | undefined): string | undefined {
  return span?.spanContext().spanId;
}

/** The request span of request `requestId` among `spans`. */
export function requestSpanOf(spans: readonly ReadableSpan[], requestId: string): ReadableSpan | undefined {
  return spans.find((span) => span.attributes['isotrace.request_span'] === true && span.attributes['isotrace.request_id'] === requestId);
}

/** The text of the first user message of a model request (the run's input). */
export function userTextOf(request: Readonly<ModelRequest>): string {
  if (typeof request.input === 'string') return request.input;
  for (const item of request.input) {
    const message = item as { role?: unknown; content?: unknown };
    if (message.role === 'user' && typeof message.content === 'string') return message.content;
  }
  return '';
}

/** The call ids of the tool results already in a model request's input. */
export function resultCallIdsOf(request: Readonly<ModelRequest>): string[] {
  if (typeof request.input === 'string') return [];
  return request.input.flatMap((item) => {
    const result = item as { type?: unknown; callId?: unknown };
    return result.type === 'function_call_result' && typeof result.callId === 'string' ? [result.callId] : [];
  });
}

/**
 * A ScriptedModel that can serve many runs at once, in any order: each of its
 * `steps` model calls is answered by `respond`, which decides from the request
 * alone (a module-level agent's model cannot keep a per-run script).
 */
export function statelessModel(respond: (request: Readonly<ModelRequest>) => ScriptedModelResponse, steps = 1000): ScriptedModel {
  return new ScriptedModel(Array.from({ length: steps }, () => modelResponder((call: RecordedModelCall) => respond(call.request))));
}
