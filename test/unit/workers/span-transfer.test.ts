// A span finished in a worker thread crosses to the exporting thread as SpanData
// (workers/internal/span-transfer.ts): what arrives must be the span that ended, field for field,
// with the exporting thread's resource.
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace';
import { describe, expect, it } from 'vitest';
import { fromSpanData, toSpanData } from '../../../sdk/src/workers/internal/span-transfer.ts';
import { workerResource, WorkerTracerProvider } from '../../../sdk/src/workers/internal/worker-tracer.ts';

function fieldsOf(span: ReadableSpan): unknown {
  const { name, kind, parentSpanContext, startTime, endTime, status, attributes, links, events, duration, ended, instrumentationScope, droppedAttributesCount, droppedEventsCount, droppedLinksCount } = span;
  return { name, kind, spanContext: span.spanContext(), parentSpanContext, startTime, endTime, status, attributes, links, events, duration, ended, instrumentationScope, droppedAttributesCount, droppedEventsCount, droppedLinksCount };
}

describe('span data across the thread hop', () => {
  it('a child and a root span arrive as they ended, with the exporting resource', () => {
    const ended: ReadableSpan[] = [];
    const collect: SpanProcessor = { onStart: () => {}, onEnd: (span) => void ended.push(span), forceFlush: async () => {}, shutdown: async () => {} };
    const tracer = new WorkerTracerProvider(workerResource({ 'service.name': 'worker' }), [collect]).getTracer('scope', '1.0.0', { schemaUrl: 'https://example.com/s' });
    const parent = trace.setSpanContext(ROOT_CONTEXT, { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED, isRemote: true });
    const child = tracer.startSpan('child', { kind: SpanKind.CLIENT, attributes: { 'a.string': 'x', 'a.list': [1, 2] }, links: [{ context: trace.getSpanContext(parent)!, attributes: { why: 'link' } }] }, parent);
    child.addEvent('step', { n: 1 });
    child.setStatus({ code: SpanStatusCode.ERROR, message: 'failed' });
    child.end();
    tracer.startSpan('root', {}, context.active()).end();

    const exporting = workerResource({ 'service.name': 'main' });
    for (const span of ended) {
      const arrived = fromSpanData(structuredClone(toSpanData(span)), exporting);
      // Links travel without their trace state and dropped-attribute count (as before this form: see SpanData).
      const links = span.links.map((link) => ({ context: { ...link.context, traceState: undefined }, attributes: link.attributes }));
      expect(fieldsOf(arrived)).toEqual({ ...(fieldsOf(span) as object), links });
      expect(arrived.resource).toBe(exporting);
    }
    expect(ended.map((span) => span.parentSpanContext?.spanId)).toEqual(['b7ad6b7169203331', undefined]);
  });
});
