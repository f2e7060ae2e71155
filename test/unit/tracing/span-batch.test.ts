/**
 * The hand-over to the export thread: spans written on the main thread as
 * bytes, one text of strings and a side list (span-batch.ts), posted with the
 * bytes transferred, and read back on the export thread. What a user can see:
 * every span reaches the exporter exactly as recorded (every kind of attribute
 * value, unicode with lone surrogates, -0, NaN, huge and fractional numbers,
 * arrays, bytes, undefined members, events, links, trace state, status,
 * resources and scopes), so the bytes a collector gets are the ones the
 * recorded spans serialize to, in protobuf and in JSON.
 */
import { describe, expect, it } from 'vitest';
import { ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type SpanKind } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { CompactDictionary, CompactReader, type CompactDefinitions } from '../../../sdk/src/tracing/internal/export-thread/compact-span.ts';
import { ProtobufBatchReader, releaseEncodedSpans, serializeEncodedSpans, type EncodedSpan } from '../../../sdk/src/tracing/internal/export-thread/protobuf-span-batch.ts';
import { serializeSpansAsProtobuf } from '../../../sdk/src/tracing/internal/export-thread/protobuf-spans.ts';
import { readSpanBatch, SpanBatchWriter, type SpanBatch } from '../../../sdk/src/tracing/internal/export-thread/span-batch.ts';

const LINKED = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: true, traceState: new TraceState('linked=yes,k=v') };
const PARENT = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1, isRemote: true, traceState: new TraceState('vendor=a1') };

/** Attribute values of every kind and size the hand-over treats apart. */
function everyValue(i: number): Attributes {
  return {
    ascii: `value-${i}`,
    empty: '',
    short: 'twelve chars',
    thirteen: 'thirteen char',
    ids: '0123456789abcdef0123456789abcdef',
    longer: '0123456789abcdef0123456789abcdef!',
    unicode: 'ünïcode ✓ 🚀',
    latin1: 'café',
    loneHigh: 'a\uD800b',
    loneLow: '\uDC00',
    long: 'x'.repeat(5000 + i),
    repeated: 'same every span',
    int: i,
    zero: 0,
    negativeZero: -0,
    negative: -1 - i * 1_000_003,
    int32Edges: [2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1],
    large: 2 ** 53 + 2 * i,
    fraction: i + 0.1,
    nan: Number.NaN,
    infinite: Number.POSITIVE_INFINITY,
    minusInfinite: Number.NEGATIVE_INFINITY,
    tiny: Number.MIN_VALUE,
    flag: i % 2 === 0,
    strings: ['a', 'ü', '', '\uD83D'],
    numbers: [1, -2, 3.5, -0, Number.NaN],
    mixed: [true, null, undefined, 'x'] as unknown as string[],
    undefinedValue: undefined,
    nullValue: null as unknown as string,
    bytes: new Uint8Array([0, 1, 255]) as unknown as string,
    map: { a: 1, nested: { b: ['x', -0] }, none: undefined } as unknown as string,
    '': 'empty key',
    'ключ ✓': 'unicode key',
    '123': 'index-like key',
  };
}

/** Attribute values with ASCII strings only, as most spans have. */
function asciiValues(i: number): Attributes {
  const id = `${i}`.padStart(36, '0');
  return { 'http.request.method': 'GET', 'url.path': `/items/${i}`, 'isotrace.request_id': id, 'isotrace.correlation_id': id, 'user.id': 'u1', 'server.port': 4000, 'http.response.status_code': 200, flag: true, long: 'y'.repeat(300 + i) };
}

/** Spans as OpenTelemetry records them: two resources, three scopes, events, links with trace state, statuses, a remote parent. */
function recordedSpans(): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const providers = [
    new TracerProvider({ resource: resourceFromAttributes({ 'service.name': 'first', ratio: 0.25 }, { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' }), spanProcessors: [new SimpleSpanProcessor({ exporter })] }),
    new TracerProvider({ resource: resourceFromAttributes({ 'service.name': 'second ✓' }), spanProcessors: [new SimpleSpanProcessor({ exporter })] }),
  ];
  const tracers = [providers[0]!.getTracer('scope-a', '1.0.0', { schemaUrl: 'https://example.com/schema' }), providers[0]!.getTracer('scope-b'), providers[1]!.getTracer('scope-c')];
  for (let i = 0; i < 30; i++) {
    const context = i % 4 === 1 ? trace.setSpanContext(ROOT_CONTEXT, PARENT) : ROOT_CONTEXT;
    // Every other span has only ASCII strings (they travel as bytes; the others' as text).
    const span = tracers[i % tracers.length]!.startSpan(
      i % 7 === 0 ? `späñ ${i}` : `span ${i}`,
      { kind: (i % 5) as SpanKind, attributes: i % 2 === 0 ? everyValue(i) : asciiValues(i), links: i % 3 === 0 ? [{ context: LINKED, attributes: { n: i, note: 'ü' } }] : [] },
      context,
    );
    if (i % 4 === 0) span.addEvent('event ✓', { at: i, big: 'y'.repeat(200), list: [1, 2] }, [1_700_000_000 + i, 123_456_789]);
    if (i % 6 === 0) span.setStatus({ code: SpanStatusCode.ERROR, message: i % 12 === 0 ? 'failed ✗' : 'failed' });
    span.end();
  }
  return exporter.getFinishedSpans();
}

/** The export thread's view: each batch posted as the processor posts it (bytes transferred), then read back. */
class Channel {
  readonly dictionary = new CompactDictionary();
  readonly writer = new SpanBatchWriter(this.dictionary);
  readonly reader = new CompactReader((attributes, schemaUrl) => resourceFromAttributes(attributes, schemaUrl === undefined ? {} : { schemaUrl }));
  readonly protobufReader = new ProtobufBatchReader(this.reader);
  readonly buffers: ArrayBuffer[] = [];

  /** Writes the spans in batches of `size`, hands each over and returns what the export thread reads. */
  handOver(spans: readonly ReadableSpan[], size = 8): ReadableSpan[] {
    const read: ReadableSpan[] = [];
    for (let i = 0; i < spans.length; i += size) {
      for (const span of spans.slice(i, i + size)) expect(this.writer.write(span)).toBe(true);
      read.push(...this.#post(this.writer.take()!, this.dictionary.takeUnsent()));
    }
    return read;
  }

  /** The same hand-over, read by the protobuf path (each span its Span message, as the export thread queues it with http/protobuf). */
  handOverEncoded(spans: readonly ReadableSpan[], size = 8): EncodedSpan[] {
    const read: EncodedSpan[] = [];
    for (let i = 0; i < spans.length; i += size) {
      for (const span of spans.slice(i, i + size)) expect(this.writer.write(span)).toBe(true);
      const batch = this.writer.take()!;
      const received = structuredClone({ batch, definitions: this.dictionary.takeUnsent() }, { transfer: [batch.bytes] });
      if (received.definitions) this.reader.define(received.definitions);
      const encoded = this.protobufReader.read(received.batch);
      expect(encoded).toHaveLength(received.batch.count);
      for (const span of encoded) read.push(span!);
      this.writer.recycle([received.batch.bytes]);
    }
    return read;
  }

  #post(batch: SpanBatch, definitions: CompactDefinitions | undefined): ReadableSpan[] {
    const received = structuredClone({ batch, definitions }, { transfer: [batch.bytes] });
    expect(batch.bytes.byteLength).toBe(0);
    if (received.definitions) this.reader.define(received.definitions);
    const spans = readSpanBatch(received.batch, this.reader.keys).map((data) => {
      expect(this.reader.canRead(data)).toBe(true);
      return this.reader.read(data);
    });
    // As the export thread does: the buffer goes back to be written again.
    this.writer.recycle([received.batch.bytes]);
    return spans;
  }
}

/** Every value, exactly: Object.is for numbers (-0, NaN), typed arrays by content, and own keys (undefined members included) in order. */
function expectSame(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected !== 'object' || expected === null) {
    expect(Object.is(actual, expected), `${path}: ${String(actual)} is not ${String(expected)}`).toBe(true);
    return;
  }
  if (expected instanceof Uint8Array) {
    expect(actual).toBeInstanceOf(Uint8Array);
    expect([...(actual as Uint8Array)]).toEqual([...expected]);
    return;
  }
  expect(Object.keys(actual as object), path).toEqual(Object.keys(expected));
  for (const key of Object.keys(expected)) expectSame((actual as Record<string, unknown>)[key], (expected as Record<string, unknown>)[key], `${path}.${key}`);
}

function expectSameSpan(actual: ReadableSpan, expected: ReadableSpan): void {
  const name = expected.name;
  expect(actual.name).toBe(name);
  expect(actual.kind).toBe(expected.kind);
  expect({ ...actual.spanContext(), traceState: actual.spanContext().traceState?.serialize() }).toEqual({ ...expected.spanContext(), traceState: expected.spanContext().traceState?.serialize() });
  expect(actual.parentSpanContext?.spanId).toBe(expected.parentSpanContext?.spanId);
  expect(actual.parentSpanContext?.isRemote).toBe(expected.parentSpanContext?.isRemote);
  expect([actual.startTime, actual.endTime, actual.duration]).toEqual([expected.startTime, expected.endTime, expected.duration]);
  expect(actual.status).toEqual(expected.status);
  expectSame(actual.attributes, expected.attributes, `${name} attributes`);
  expect(actual.events).toEqual(expected.events);
  expect(actual.links.map((link) => ({ ...link, context: { ...link.context, traceState: link.context.traceState?.serialize() } }))).toEqual(
    expected.links.map((link) => ({ ...link, context: { ...link.context, traceState: link.context.traceState?.serialize() } })),
  );
  expect([actual.droppedAttributesCount, actual.droppedEventsCount, actual.droppedLinksCount]).toEqual([expected.droppedAttributesCount, expected.droppedEventsCount, expected.droppedLinksCount]);
  expect(actual.resource.attributes).toEqual(expected.resource.attributes);
  expect(actual.resource.schemaUrl).toBe(expected.resource.schemaUrl);
  expect(actual.instrumentationScope).toEqual(expected.instrumentationScope);
}

describe('span batches: what the export thread reads is what was recorded', () => {
  it('every kind of value, exactly: unicode and lone surrogates, -0, NaN, int32 edges, huge numbers, arrays, bytes, undefined members, events, links, trace state', () => {
    const spans = recordedSpans();
    const read = new Channel().handOver(spans);
    expect(read).toHaveLength(spans.length);
    spans.forEach((span, i) => expectSameSpan(read[i]!, span));
  });

  it('serializes to the same OTLP bytes as the recorded spans, in protobuf and in JSON', () => {
    const spans = recordedSpans();
    const read = new Channel().handOver(spans, 16);
    expect(Buffer.from(serializeSpansAsProtobuf(read)).equals(Buffer.from(serializeSpansAsProtobuf(spans)))).toBe(true);
    expect(Buffer.from(JsonTraceSerializer.serializeRequest(read)!).toString('utf8')).toBe(Buffer.from(JsonTraceSerializer.serializeRequest(spans)!).toString('utf8'));
  });

  it('stays exact across batches that reuse given-back buffers and repeat values (each batch is read on its own)', () => {
    const channel = new Channel();
    const spans = recordedSpans();
    // Batches of one, two and five spans, many times over: repeats, buffers of other sizes, stale bytes beyond each batch.
    for (const size of [1, 2, 5, 30, 1]) channel.handOver(spans, size).forEach((span, i) => expectSameSpan(span, spans[i]!));
  });

  it('names each attribute right when spans share their first keys but not the rest (more, fewer, other or reordered keys)', () => {
    const exporter = new InMemorySpanExporter();
    const tracer = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }).getTracer('shapes');
    const shapes: Attributes[] = [
      { 'http.request.method': 'GET', 'url.path': '/a', 'http.response.status_code': 200 },
      { 'http.request.method': 'GET', 'url.path': '/b' },
      { 'http.request.method': 'POST', 'url.path': '/c', 'http.response.status_code': 201, 'user.id': 'u1' },
      { 'http.request.method': 'PUT', 'user.id': 'u2', 'url.path': '/d' },
      { 'http.request.method': 'GET' },
      { 'url.path': '/e', 'http.request.method': 'GET' },
      {},
    ];
    for (let i = 0; i < 60; i++) tracer.startSpan(`span ${i}`, { attributes: shapes[(i * 5) % shapes.length] }).end();
    const spans = exporter.getFinishedSpans();
    const read = new Channel().handOver(spans, 7);
    spans.forEach((span, i) => expectSameSpan(read[i]!, span));
  });

  it('sends keys beyond the dictionary bound as text, so a key made from data never grows it without bound', () => {
    const exporter = new InMemorySpanExporter();
    const tracer = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }).getTracer('keys');
    for (let i = 0; i < 50; i++) {
      const attributes: Attributes = {};
      for (let k = 0; k < 100; k++) attributes[`key.${i}.${k}`] = k;
      attributes.common = 'kept';
      tracer.startSpan(`span ${i}`, { attributes }).end();
    }
    const spans = exporter.getFinishedSpans();
    const channel = new Channel();
    const read = channel.handOver(spans, 10);
    spans.forEach((span, i) => expectSameSpan(read[i]!, span));
    expect(channel.reader.keys.length).toBeLessThanOrEqual(4096);
    expect(channel.reader.keys.length).toBeGreaterThan(4000);
  });

  it('leaves out, whole, a span whose data throws when read, and the batch stays readable', () => {
    const spans = recordedSpans().slice(0, 3);
    const broken = Object.create(spans[1]!, { attributes: { get: () => ({ ok: 'x', get bad(): string { throw new Error('unreadable'); } }) } }) as ReadableSpan;
    const channel = new Channel();
    expect(channel.writer.write(spans[0]!)).toBe(true);
    expect(channel.writer.write(broken)).toBe(false);
    expect(channel.writer.write(spans[2]!)).toBe(true);
    expect(channel.writer.count).toBe(2);
    const batch = channel.writer.take()!;
    const reader = channel.reader;
    reader.define(channel.dictionary.takeUnsent()!);
    const read = readSpanBatch(batch, reader.keys).map((data) => reader.read(data));
    expectSameSpan(read[0]!, spans[0]!);
    expectSameSpan(read[1]!, spans[2]!);
  });
});

/** Spans that exercise the protobuf path's every branch: ASCII spans (bytes), unicode ones (texts), repeats, keys a JS object reorders or drops, dropped counts. */
function protobufShapes(): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const limited = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'limited' }),
    spanLimits: { attributeCountLimit: 3, eventCountLimit: 1, linkCountLimit: 1 },
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = limited.getTracer('limits', '2.0.0');
  for (let i = 0; i < 12; i++) {
    const span = tracer.startSpan(i % 3 === 0 ? 'same name' : `limited ${i}`, {
      kind: (i % 5) as SpanKind,
      attributes: { 'http.request.method': 'GET', 'url.path': `/p/${i % 2}`, 'user.id': 'u1', dropped: 'x', alsoDropped: i },
      links: [{ context: LINKED }, { context: PARENT }],
    }, i % 2 === 0 ? trace.setSpanContext(ROOT_CONTEXT, PARENT) : ROOT_CONTEXT);
    span.addEvent('first');
    span.addEvent('dropped');
    span.setStatus(i % 4 === 0 ? { code: SpanStatusCode.OK } : { code: SpanStatusCode.ERROR, message: i % 4 === 1 ? '' : 'same message' });
    span.end();
  }
  const plain = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }).getTracer('plain');
  // Keys a JS object puts first (array indices) or does not keep as an own key (__proto__) must come out as the object path writes them.
  const odd = JSON.parse('{"b": "1", "7": "seven", "__proto__": "proto", "a": 2, "10": true}') as Attributes;
  // Its child ends first: its id then repeats the child's parent id, and its own parent id comes after it (the place is read twice).
  const oddParent = plain.startSpan('odd keys', { attributes: odd }, trace.setSpanContext(ROOT_CONTEXT, PARENT));
  plain.startSpan('child', { attributes: { 'http.request.method': 'GET' } }, trace.setSpan(ROOT_CONTEXT, oddParent)).end();
  oddParent.end();
  plain.startSpan('ünïcode name', { attributes: { 'http.request.method': 'GET', text: 'ü', id: 'abc' } }).end();
  plain.startSpan('no attributes').end();
  plain.startSpan('after unicode', { attributes: { 'http.request.method': 'GET', id: 'abc' } }).end();
  return exporter.getFinishedSpans();
}

describe('span batches read by the protobuf path: the same request bytes as the object path', () => {
  /** What the export thread sent before: its serializer over the ReadableSpans read back; and what OpenTelemetry's serializer makes of the recorded spans. */
  function expectSameRequest(encoded: EncodedSpan[], spans: readonly ReadableSpan[], read: readonly ReadableSpan[]): void {
    const sent = Buffer.from(serializeEncodedSpans(encoded));
    expect(sent.equals(Buffer.from(serializeSpansAsProtobuf(read)))).toBe(true);
    expect(sent.equals(Buffer.from(ProtobufTraceSerializer.serializeRequest(spans as ReadableSpan[])!))).toBe(true);
  }

  it('every kind of value, unicode in texts, events, links, trace state, status, two resources and three scopes, in batches of every size', () => {
    const spans = recordedSpans();
    for (const size of [1, 3, 8, 30]) {
      const encoded = new Channel().handOverEncoded(spans, size);
      expect(encoded).toHaveLength(spans.length);
      expectSameRequest(encoded, spans, new Channel().handOver(spans, size));
      // Any slice of the queue (the batcher's export batches) is a request of its own.
      expectSameRequest(encoded.slice(5, 17), spans.slice(5, 17), new Channel().handOver(spans, size).slice(5, 17));
    }
  });

  it('ASCII request spans with repeated values, dropped counts, keys a JS object reorders, spans in texts between spans in bytes', () => {
    const spans = protobufShapes();
    for (const size of [2, 5, 16, 40]) {
      const encoded = new Channel().handOverEncoded(spans, size);
      expectSameRequest(encoded, spans, new Channel().handOver(spans, size));
      // Written from the bytes, all but the span whose keys a JS object reorders (kept as a ReadableSpan, serialized as before).
      expect(encoded.filter((span) => span.span !== undefined).map((span) => span.span!.name)).toEqual(['odd keys']);
    }
    expect(spans[0]!.droppedAttributesCount).toBe(2);
    expect(spans[0]!.droppedEventsCount).toBe(1);
    expect(spans[0]!.droppedLinksCount).toBe(1);
  });

  it('keys beyond the dictionary bound (sent as text), attribute shapes that change from span to span', () => {
    const exporter = new InMemorySpanExporter();
    const tracer = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }).getTracer('keys');
    for (let i = 0; i < 50; i++) {
      const attributes: Attributes = {};
      for (let k = 0; k < 100; k++) attributes[`key.${i}.${k}`] = k % 2 === 0 ? k : `v${k}`;
      attributes.common = 'kept';
      tracer.startSpan(`span ${i}`, { attributes }).end();
    }
    const spans = exporter.getFinishedSpans();
    expectSameRequest(new Channel().handOverEncoded(spans, 10), spans, new Channel().handOver(spans, 10));
  });

  it('leaves out, as the object path does, a span whose resource or scope was never defined', () => {
    const spans = recordedSpans().slice(0, 4);
    const channel = new Channel();
    for (const span of spans) channel.writer.write(span);
    const batch = channel.writer.take()!;
    // The definitions are lost (a batch that could not be handed over): none of the spans can be read.
    channel.dictionary.takeUnsent();
    expect(channel.protobufReader.read(batch)).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('writes a batch into the buffer of an earlier one only once all its spans were released (serialized), and never corrupts a span still queued', () => {
    const spans = protobufShapes();
    const expected = (from: number, to: number): Buffer => Buffer.from(serializeSpansAsProtobuf(new Channel().handOver(spans, 4).slice(from, to)));
    const channel = new Channel();
    const first = channel.handOverEncoded(spans.slice(0, 4), 4);
    const firstBytes = first[0]!.messages!.bytes;
    // Half of the first batch exported: its buffer stays its own, the next batch gets another.
    expect(Buffer.from(serializeEncodedSpans(first.slice(0, 2))).equals(expected(0, 2))).toBe(true);
    releaseEncodedSpans(first.slice(0, 2));
    const second = channel.handOverEncoded(spans.slice(4, 8), 4);
    expect(second[0]!.messages!.bytes).not.toBe(firstBytes);
    expect(Buffer.from(serializeEncodedSpans(first.slice(2))).equals(expected(2, 4))).toBe(true);
    releaseEncodedSpans(first.slice(2));
    // All of it exported: the next batch is written into it, and reads as it should.
    const third = channel.handOverEncoded(spans.slice(0, 4), 4);
    expect(third.find((span) => span.span === undefined)!.messages!.bytes).toBe(firstBytes);
    expect(Buffer.from(serializeEncodedSpans([...second, ...third])).equals(Buffer.from(serializeSpansAsProtobuf(new Channel().handOver([...spans.slice(4, 8), ...spans.slice(0, 4)], 4))))).toBe(true);
    // A released span is never serialized again from bytes another batch may have written.
    expect(() => serializeEncodedSpans(first.slice(0, 1))).toThrow(/released/);
  });
});
