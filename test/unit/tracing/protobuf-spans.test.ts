/**
 * The export thread's protobuf serializer writes, in one pass, the very bytes
 * of OpenTelemetry's ProtobufTraceSerializer (what a collector would get from
 * @opentelemetry/exporter-trace-otlp-proto), for every shape of span data:
 * unicode, strings long enough to need multi-byte lengths, negative, 64-bit and
 * fractional numbers, arrays, bytes, events, links with trace state, statuses,
 * several resources and scopes with schema URLs, and empty batches.
 */
import { describe, expect, it } from 'vitest';
import { type SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { serializeSpansAsProtobuf } from '../../../sdk/src/tracing/internal/export-thread/protobuf-spans.ts';
import { decodeOtlpTraces } from '../../helpers/otlp-protobuf.ts';

const LINKED = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: true, traceState: new TraceState('linked=yes,k=v') };

/** Spans from two providers (two resources), three scopes, with attribute values of every kind and size. */
async function recordedSpans(): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const providers = [
    new TracerProvider({ resource: resourceFromAttributes({ 'service.name': 'first', 'process.pid': 42, ratio: 0.25 }, { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' }), spanProcessors: [new SimpleSpanProcessor({ exporter })] }),
    new TracerProvider({ resource: resourceFromAttributes({ 'service.name': 'second ✓' }), spanProcessors: [new SimpleSpanProcessor({ exporter })] }),
  ];
  const tracers = providers.flatMap((provider) => [provider.getTracer('scope-a', '1.0.0', { schemaUrl: 'https://example.com/schema' }), provider.getTracer('scope-b')]);
  const sizes = [0, 1, 127, 128, 16_383, 16_384, 70_000];
  for (let i = 0; i < 40; i++) {
    const attributes: Attributes = {
      text: 'ünïcode ✓ 🚀',
      sized: 'x'.repeat(sizes[i % sizes.length]!),
      int: i,
      negative: -1 - i * 1_000_003,
      large: 2 ** 40 + i,
      fraction: i + 0.5,
      infinite: Number.POSITIVE_INFINITY,
      flag: i % 2 === 0,
      strings: ['a', 'ü', ''],
      numbers: [1, -2, 3.5],
      bytes: new Uint8Array([0, 1, 255]) as unknown as string,
    };
    const span = tracers[i % tracers.length]!.startSpan(`span ${i} ✓`, { kind: (i % 5) as SpanKind, attributes, links: i % 3 === 0 ? [{ context: LINKED, attributes: { n: i } }] : [] });
    if (i % 4 === 0) span.addEvent('event', { at: i, big: 'y'.repeat(200) }, [1_700_000_000 + i, 123_456_789]);
    if (i % 6 === 0) span.setStatus({ code: SpanStatusCode.ERROR, message: i % 12 === 0 ? 'failed ✗' : '' });
    span.end();
  }
  await Promise.all(providers.map((provider) => provider.forceFlush()));
  return exporter.getFinishedSpans();
}

describe('serializeSpansAsProtobuf', () => {
  it('writes the same bytes as OpenTelemetry’s ProtobufTraceSerializer, batch by batch', async () => {
    const spans = await recordedSpans();
    for (const batch of [spans, spans.slice(0, 1), spans.slice(5, 12), spans.slice(-3)]) {
      const expected = Buffer.from(ProtobufTraceSerializer.serializeRequest(batch)!);
      // A tiny starting buffer: growing it must not change a byte.
      expect(Buffer.from(serializeSpansAsProtobuf(batch, 16)).equals(expected)).toBe(true);
      expect(Buffer.from(serializeSpansAsProtobuf(batch)).equals(expected)).toBe(true);
    }
  });

  it('writes a request that decodes to every span, with its long strings intact', async () => {
    const spans = await recordedSpans();
    const decoded = decodeOtlpTraces(serializeSpansAsProtobuf(spans)) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ name: string; attributes: Array<{ key: string; value: { stringValue?: string } }> }> }> }> };
    const names = decoded.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans.map((span) => span.name)));
    expect(names.sort()).toEqual(spans.map((span) => span.name).sort());
    const sized = decoded.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans.flatMap((span) => span.attributes.filter((a) => a.key === 'sized').map((a) => a.value.stringValue!.length))));
    expect(Math.max(...sized)).toBe(70_000);
  });

  it('writes an empty request for no spans, as OpenTelemetry does', () => {
    expect(Buffer.from(serializeSpansAsProtobuf([])).equals(Buffer.from(ProtobufTraceSerializer.serializeRequest([])!))).toBe(true);
  });
});
