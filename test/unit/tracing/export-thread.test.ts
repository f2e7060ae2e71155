/**
 * Export off the event loop: with `exporter: 'otlp'` the main thread hands
 * finished spans in a compact form to an export thread, which serializes OTLP
 * and sends it. What a user can see: the bytes a collector receives are what
 * OpenTelemetry's own serializer makes of the recorded spans (protobuf by
 * default, JSON on request), stats() accounts for every span, and flush and
 * shutdown stay bounded even when the export thread never answers or dies.
 * Real collectors on 127.0.0.1.
 */
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { diag, DiagLogLevel, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type DiagLogger } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { TracerProvider, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { startTracing, withRequestContext, type Tracing } from 'isotrace';
import { ExportAccounting } from '../../../sdk/src/tracing/internal/export-accounting.ts';
import { OffThreadExportProcessor } from '../../../sdk/src/tracing/internal/export-thread/off-thread-export-processor.ts';
import { settles } from '../../helpers/guards.ts';
import { waitFor } from '../../helpers/http.ts';
import { startOtlpSink } from '../../helpers/otlp-sink.ts';
import { decodeOtlpTraces } from '../../helpers/otlp-protobuf.ts';

const warnings: string[] = [];
const logger: DiagLogger = { error: (m) => warnings.push(m), warn: (m) => warnings.push(m), info: () => {}, debug: () => {}, verbose: () => {} };
beforeAll(() => diag.setLogger(logger, DiagLogLevel.WARN));
afterAll(() => diag.disable());

const running: Tracing[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const tracing of running.splice(0)) await tracing.shutdown();
  for (const cleanup of cleanups.splice(0)) await cleanup();
  warnings.length = 0;
});

interface Received {
  url: string | undefined;
  contentType: string | undefined;
  body: Buffer;
}

/** A collector that keeps every request's raw body and answers 200. */
async function rawCollector(): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ url: req.url, contentType: req.headers['content-type'], body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

/** A span processor that keeps the spans the pipeline recorded, as OpenTelemetry hands them to processors. */
function capturing(): SpanProcessor & { spans: ReadableSpan[] } {
  const spans: ReadableSpan[] = [];
  return { spans, onStart: () => {}, onEnd: (span) => void spans.push(span), forceFlush: async () => {}, shutdown: async () => {} };
}

const PARENT = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1, isRemote: true, traceState: new TraceState('vendor=a1,other=b2') };
const LINKED = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: true, traceState: new TraceState('linked=yes') };

/** Spans with everything OTLP carries: every attribute type, an event, a link with trace state, an error status, a remote parent, two scopes. */
function recordEverything(): void {
  const tracer = trace.getTracerProvider().getTracer('fidelity-scope', '1.2.3', { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' });
  const span = tracer.startSpan(
    'everything',
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        text: 'ünïcode ✓',
        int: 42,
        negative: -7,
        double: 1.5,
        flag: true,
        strings: ['a', 'b'],
        numbers: [1, 2.5],
        flags: [true, false],
        // What the hand-over treats apart: plain ASCII, a lone surrogate, a long string, numbers beyond int32, -0, NaN, infinities.
        ascii: 'plain ascii value',
        lone: 'half \uD83D of a pair',
        long: 'l'.repeat(10_000),
        large: 2 ** 53 + 2,
        beyondInt32: -(2 ** 31) - 1,
        negativeZero: -0,
        nan: Number.NaN,
        infinite: Number.NEGATIVE_INFINITY,
        empty: '',
      },
      links: [{ context: LINKED, attributes: { 'link.reason': 'follows', 'link.n': 3 } }],
    },
    trace.setSpanContext(ROOT_CONTEXT, PARENT),
  );
  span.addEvent('checkpoint', { step: 2, note: 'half way' }, [1_700_000_000, 123_456_789]);
  span.setStatus({ code: SpanStatusCode.ERROR, message: 'went wrong' });
  span.end();
  trace.getTracer('second-scope').startSpan('plain root', { kind: SpanKind.PRODUCER }).end();
}

describe('export thread: what reaches the collector', () => {
  it('sends OTLP protobuf to <endpoint>/v1/traces, byte for byte what OpenTelemetry serializes from the recorded spans (attributes, events, links, status, trace state, resource, scopes)', async () => {
    const collector = await rawCollector();
    const recorded = capturing();
    const resource = resourceFromAttributes({ 'deployment.environment.name': 'test', 'service.version': '9.9.9' });
    const tracing = await startTracing({ serviceName: 'fidelity', endpoint: collector.url, instrumentHttp: false, spanProcessors: [recorded], resource });
    running.push(tracing);
    recordEverything();
    await tracing.forceFlush();

    expect(collector.received.map((r) => [r.url, r.contentType])).toEqual([['/v1/traces', 'application/x-protobuf']]);
    const [body] = collector.received.map((r) => r.body);
    expect(recorded.spans).toHaveLength(2);
    expect(Buffer.from(ProtobufTraceSerializer.serializeRequest(recorded.spans)!).equals(body!)).toBe(true);
    // Read back, for the record of what it held.
    const decoded = JSON.stringify(decodeOtlpTraces(body!));
    for (const expected of ['"traceState":"vendor=a1,other=b2"', '"traceState":"linked=yes"', '"name":"checkpoint"', '"message":"went wrong"', 'ünïcode ✓', '"name":"second-scope"', '"stringValue":"9.9.9"']) {
      expect(decoded).toContain(expected);
    }
    expect(tracing.stats()).toEqual({ ended: 2, exported: 2, failed: 0, dropped: 0 });
  });

  it('sends OTLP JSON when OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json, byte for byte what OpenTelemetry serializes', async () => {
    const collector = await rawCollector();
    const recorded = capturing();
    process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = 'http/json';
    cleanups.push(() => void delete process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL);
    const tracing = await startTracing({ serviceName: 'fidelity-json', endpoint: collector.url, instrumentHttp: false, spanProcessors: [recorded] });
    running.push(tracing);
    recordEverything();
    await tracing.forceFlush();

    expect(collector.received.map((r) => [r.url, r.contentType])).toEqual([['/v1/traces', 'application/json']]);
    expect(collector.received[0]!.body.toString('utf8')).toBe(Buffer.from(JsonTraceSerializer.serializeRequest(recorded.spans)!).toString('utf8'));
  });

  it('reports an OTLP protocol it cannot speak (grpc) once and exports over http/protobuf', async () => {
    const sink = await startOtlpSink();
    cleanups.push(() => sink.close());
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'grpc';
    cleanups.push(() => void delete process.env.OTEL_EXPORTER_OTLP_PROTOCOL);
    const tracing = await startTracing({ serviceName: 'grpc-asked', endpoint: sink.url, instrumentHttp: false });
    running.push(tracing);
    await withRequestContext({ tenantId: 't1', userId: 'u1', name: 'over-protobuf' }, () => undefined);
    await tracing.forceFlush();
    expect(sink.spans().map((span) => span.name)).toEqual(['over-protobuf']);
    expect(sink.contentTypes).toEqual(['application/x-protobuf']);
    expect(warnings.filter((message) => message.includes('OTEL_EXPORTER_OTLP_PROTOCOL="grpc" is not a protocol isotrace exports spans with'))).toHaveLength(1);
  });

  it('accounts for every span across the thread: 3,000 request spans with their identity delivered, stats() == what the collector acknowledged', async () => {
    const sink = await startOtlpSink();
    cleanups.push(() => sink.close());
    const tracing = await startTracing({ serviceName: 'accounted', endpoint: sink.url, instrumentHttp: false });
    running.push(tracing);
    // Waves below the queue bound, flushed in between: the pipeline itself never has to drop.
    for (let wave = 0; wave < 6; wave++) {
      await Promise.all(Array.from({ length: 500 }, (_, i) => wave * 500 + i).map((n) => withRequestContext({ tenantId: `tenant-${n % 7}`, userId: `user-${n}`, name: 'counted' }, async () => n)));
      await tracing.forceFlush();
    }
    const spans = sink.spans();
    expect(tracing.stats()).toEqual({ ended: 3000, exported: 3000, failed: 0, dropped: 0 });
    expect(spans).toHaveLength(3000);
    expect(new Set(spans.map((span) => span.attributes['user.id'])).size).toBe(3000);
    expect(spans.every((span) => span.attributes['isotrace.tenant_id'] === `tenant-${Number(String(span.attributes['user.id']).slice(5)) % 7}`)).toBe(true);
  });
});

describe('export thread: a batch that cannot be handed over', () => {
  it('is dropped and reported once, and the spans after it still reach the collector (their resource, scope and keys were defined in the lost batch)', async () => {
    const sink = await startOtlpSink();
    cleanups.push(() => sink.close());
    const accounting = new ExportAccounting();
    const processor = new OffThreadExportProcessor({ protocol: 'http/protobuf', url: `${sink.url}/v1/traces`, batch: { maxQueueSize: 64, exportTimeoutMillis: 2000 } }, accounting, 2000);
    // A value structured clone cannot copy, slipped into the first span after it was recorded (as a buggy processor could).
    const spoiler: SpanProcessor = { onStart: () => {}, onEnd: (span) => void (span.name === 'spoiled' && Object.assign(span.attributes, { unclonable: () => 'x' })), forceFlush: async () => {}, shutdown: async () => {} };
    const provider = new TracerProvider({ resource: resourceFromAttributes({ 'service.name': 'requeued' }), spanProcessors: [spoiler, accounting.wrapProcessor(processor)] });
    cleanups.push(() => provider.shutdown());
    const tracer = provider.getTracer('requeue-scope');
    tracer.startSpan('spoiled', { attributes: { 'tenant.id': 't1' } }).end();
    await provider.forceFlush();
    tracer.startSpan('after', { attributes: { 'tenant.id': 't2' } }).end();
    await provider.forceFlush();

    expect(warnings.filter((message) => message.includes('could not hand spans over to the export thread'))).toHaveLength(1);
    expect(sink.spans().map((span) => [span.name, span.attributes['tenant.id']])).toEqual([['after', 't2']]);
    expect(accounting.stats()).toEqual({ ended: 2, exported: 1, failed: 0, dropped: 1 });
  });
});

/** A pipeline of the off-thread processor alone, with `workerUrl` as its thread, for threads that misbehave. */
function pipelineWith(workerUrl: URL): { provider: TracerProvider; accounting: ExportAccounting } {
  const accounting = new ExportAccounting();
  const processor = new OffThreadExportProcessor({ protocol: 'http/protobuf', url: 'http://127.0.0.1:9/v1/traces', batch: { maxQueueSize: 64, exportTimeoutMillis: 300 } }, accounting, 300, workerUrl);
  const provider = new TracerProvider({ spanProcessors: [accounting.wrapProcessor(processor)] });
  return { provider, accounting };
}

describe('export thread: flush and shutdown stay bounded', () => {
  it('when the thread never answers (it spins for ever): forceFlush() and shutdown() resolve, every span is counted as dropped', async () => {
    const { provider, accounting } = pipelineWith(new URL('../../fixtures/export-thread/unresponsive-worker.mjs', import.meta.url));
    const tracer = provider.getTracer('bounded');
    // More than the queue bound: spans the thread never takes are counted, never held without bound.
    for (let i = 0; i < 500; i++) tracer.startSpan(`span-${i}`).end();
    await expect(settles(provider.forceFlush(), 'forceFlush()')).resolves.toBeUndefined();
    await expect(settles(provider.shutdown(), 'shutdown()')).resolves.toBeUndefined();
    expect(accounting.stats()).toEqual({ ended: 500, exported: 0, failed: 0, dropped: 500 });
  });

  it('when the thread dies: reported once on the diagnostic logger, flushes and shutdown resolve, every span is counted as dropped', async () => {
    const { provider, accounting } = pipelineWith(new URL('../../fixtures/export-thread/exiting-worker.mjs', import.meta.url));
    const tracer = provider.getTracer('reported');
    for (let i = 0; i < 3; i++) {
      tracer.startSpan(`span-${i}`).end();
      await expect(settles(provider.forceFlush(), 'forceFlush()')).resolves.toBeUndefined();
    }
    await expect(settles(provider.shutdown(), 'shutdown()')).resolves.toBeUndefined();
    expect(warnings.filter((message) => message.includes('the export thread exited'))).toHaveLength(1);
    expect(accounting.stats()).toEqual({ ended: 3, exported: 0, failed: 0, dropped: 3 });
  });
});

/**
 * A collector that answers 200 as soon as a request's head arrives, then
 * reads nothing for `holdMs`: the body stays in the exporter's socket, behind
 * an export that already succeeded. Keeps each request's body, and when it
 * was whole.
 */
async function earlyAnsweringCollector(holdMs: number): Promise<{ url: string; bodies: Buffer[]; wholeAt: number[]; open: () => number }> {
  const bodies: Buffer[] = [];
  const wholeAt: number[] = [];
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on(
      'data',
      requestReader({
        head: () => {
          socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n');
          socket.pause();
          setTimeout(() => socket.resume(), holdMs);
        },
        body: (body) => {
          bodies.push(body);
          wholeAt.push(Date.now());
        },
      }),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies, wholeAt, open: () => sockets.size };
}

/**
 * Reads HTTP/1.1 requests from a connection's data, one after another: tells
 * each head as it completes, and each body (content-length or chunked) once it
 * is whole.
 */
function requestReader(on: { head: () => void; body: (body: Buffer) => void }): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  let parts: Buffer[] = [];
  /** What is read next: a head, a chunk-size line, so many body bytes, or a chunked body's last CRLF. */
  let phase: { kind: 'head' } | { kind: 'size' } | { kind: 'bytes'; left: number; chunked: boolean } | { kind: 'end' } = { kind: 'head' };
  const finish = (): void => {
    on.body(Buffer.concat(parts));
    parts = [];
    phase = { kind: 'head' };
  };
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    for (;;) {
      if (phase.kind === 'bytes') {
        const take = Math.min(phase.left, pending.length);
        parts.push(pending.subarray(0, take));
        pending = pending.subarray(take);
        phase.left -= take;
        if (phase.left > 0) return;
        if (phase.chunked) phase = { kind: 'size' };
        else finish();
        continue;
      }
      const separator = phase.kind === 'head' ? '\r\n\r\n' : '\r\n';
      const at = pending.indexOf(separator);
      if (at < 0) return;
      const text = pending.subarray(0, at).toString('latin1');
      pending = pending.subarray(at + separator.length);
      if (phase.kind === 'head') {
        on.head();
        const length = /content-length:\s*(\d+)/i.exec(text);
        phase = length ? { kind: 'bytes', left: Number(length[1]), chunked: false } : { kind: 'size' };
      } else if (phase.kind === 'end') finish();
      else if (text !== '') {
        // A chunk's size line (an empty line is the CRLF after a chunk's data).
        const size = Number.parseInt(text, 16);
        phase = size > 0 ? { kind: 'bytes', left: size, chunked: true } : { kind: 'end' };
      }
    }
  };
}

describe('export thread: a collector that answers before it has read the body', () => {
  it('receives every body as it was serialized: a later export never writes into a body still being sent', async () => {
    const collector = await earlyAnsweringCollector(1_500);
    const accounting = new ExportAccounting();
    const processor = new OffThreadExportProcessor({ protocol: 'http/protobuf', url: `${collector.url}/v1/traces`, batch: { maxQueueSize: 2048, exportTimeoutMillis: 10_000 } }, accounting, 10_000);
    const provider = new TracerProvider({ spanProcessors: [accounting.wrapProcessor(processor)] });
    cleanups.push(() => provider.shutdown());
    const tracer = provider.getTracer('early-answer');
    // Bodies of about 10 MB: far more than the sockets' buffers hold while the collector reads nothing.
    const payloadOf = (n: number): string => `${n}:`.padEnd(n < 512 ? 20_000 : 19_000, String(n % 10));
    const record = (from: number): void => {
      for (let n = from; n < from + 512; n++) tracer.startSpan(`span-${n}`, { attributes: { n, payload: payloadOf(n) } }).end();
    };
    record(0);
    await waitFor(() => accounting.stats().exported === 512, 'the first export to succeed', 20_000);
    // The first body is still on its way; the second (a little smaller: it would fit in the first's buffer) is serialized now.
    const secondRecordedAt = Date.now();
    record(512);
    await provider.forceFlush();
    await waitFor(() => collector.bodies.length === 2, 'both bodies to arrive', 20_000);
    // The case at hand: the first body was still being sent when the second export was serialized.
    expect(collector.wholeAt[0]).toBeGreaterThan(secondRecordedAt);

    const received = collector.bodies.flatMap((body) => spansOf(decodeOtlpTraces(body)));
    expect(received).toHaveLength(1024);
    expect(received.every(({ n, payload }) => payload === payloadOf(Number(n)))).toBe(true);
    expect(new Set(received.map(({ n }) => n)).size).toBe(1024);
  });
});

describe('export thread: a connection that stops sending', () => {
  it('is closed once it has sent and received nothing for twice the export timeout (a gzipped body the collector answered before reading, then read slowly)', async () => {
    process.env.OTEL_EXPORTER_OTLP_TRACES_COMPRESSION = 'gzip';
    cleanups.push(() => void delete process.env.OTEL_EXPORTER_OTLP_TRACES_COMPRESSION);
    const collector = await earlyAnsweringCollector(1_000);
    const accounting = new ExportAccounting();
    const settings = { protocol: 'http/protobuf', url: `${collector.url}/v1/traces`, timeoutMillis: 300, batch: { maxQueueSize: 2048, exportTimeoutMillis: 10_000 } } as const;
    const processor = new OffThreadExportProcessor(settings, accounting, 10_000);
    const provider = new TracerProvider({ spanProcessors: [accounting.wrapProcessor(processor)] });
    cleanups.push(() => provider.shutdown());
    const tracer = provider.getTracer('stalled');
    // About 10 MB that gzip cannot shrink much: the upload has to wait for the collector.
    for (let n = 0; n < 512; n++) tracer.startSpan(`span-${n}`, { attributes: { payload: scrambled(n, 20_000) } }).end();
    await waitFor(() => accounting.stats().exported === 512, 'the export to succeed', 20_000);
    // Node's client stops sending such a body halfway and no request timeout watches it any more: isotrace closes it.
    await waitFor(() => collector.open() === 0, 'the stalled connection to be closed', 20_000);
    expect(collector.bodies).toHaveLength(0);
    expect(warnings.filter((message) => message.includes('sent and received nothing for 600 ms'))).toHaveLength(1);
  });
});

/** `length` letters and digits that depend on `seed` and hardly compress. */
function scrambled(seed: number, length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let state = (seed + 1) * 2_654_435_761;
  let text = '';
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    text += alphabet[(state >>> 0) % alphabet.length];
  }
  return text;
}

/** The `n` and `payload` attributes of every span of a decoded export. */
function spansOf(request: Record<string, unknown>): Array<{ n: unknown; payload: unknown }> {
  type Attribute = { key: string; value: { stringValue?: string; intValue?: string } };
  type Span = { attributes?: Attribute[] };
  const resourceSpans = (request.resourceSpans ?? []) as Array<{ scopeSpans?: Array<{ spans?: Span[] }> }>;
  return resourceSpans.flatMap((resource) =>
    (resource.scopeSpans ?? []).flatMap((scope) =>
      (scope.spans ?? []).map((span) => {
        const value = (key: string): Attribute['value'] | undefined => span.attributes?.find((attribute) => attribute.key === key)?.value;
        return { n: Number(value('n')?.intValue), payload: value('payload')?.stringValue };
      }),
    ),
  );
}
