import { trace, type Span } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';

/**
 * The AI SDK's own `execute_tool` span for this very call, when its
 * OpenTelemetry integration (`@ai-sdk/otel`) made one and made it active
 * around `execute`: a recording span whose GenAI attributes name this tool
 * and this call id, and that isotrace has not claimed yet. Anything else
 * (telemetry off, the legacy `ai.toolCall` spans, a span isotrace cannot
 * read) gets isotrace's own span instead.
 */
export function sdkToolSpan(toolName: string, toolCallId: unknown): Span | undefined {
  if (typeof toolCallId !== 'string') return undefined;
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return undefined;
  // The API's Span hides attributes; the SDK's spans (ReadableSpan) show them. Unreadable: not the SDK's span as far as we can tell.
  const attributes = (span as unknown as Partial<ReadableSpan>).attributes;
  if (attributes?.['gen_ai.operation.name'] !== 'execute_tool') return undefined;
  if (attributes['gen_ai.tool.call.id'] !== toolCallId || attributes['gen_ai.tool.name'] !== toolName) return undefined;
  // Already an isotrace tool call (a tool set wrapped twice, a dispatcher's own span): one claim per span.
  return attributes['isotrace.registry_id'] === undefined ? span : undefined;
}
