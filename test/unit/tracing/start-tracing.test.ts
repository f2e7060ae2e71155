import { describe, it, expect, afterEach } from 'vitest';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { fileURLToPath } from 'node:url';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import {
  getRequestContext,
  startTracing,
  TracingAlreadyStartedError,
  TracingNotStartedError,
  withRequestContext,
  type Tracing,
  type TracingOptions,
} from 'isotrace';
import { MemoryStore } from 'isotrace/shared-state';
import { closedPort } from '../../helpers/net.js';
import { listen } from '../../helpers/http.js';
import { startOtlpSink } from '../../helpers/otlp-sink.js';

// Every test starts its own isotrace; whatever a test leaves running is stopped here.
const running: Tracing[] = [];

async function start(options: TracingOptions): Promise<Tracing> {
  const tracing = await startTracing(options);
  running.push(tracing);
  return tracing;
}

afterEach(async () => {
  for (const tracing of running.splice(0)) await tracing.shutdown();
});

/** A SpanExporter that keeps what it is given. */
class CollectingExporter implements SpanExporter {
  readonly spans: ReadableSpan[] = [];
  shutdownCalls = 0;
  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.spans.push(...spans);
    resultCallback({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {
    this.shutdownCalls++;
  }
}

describe('before startTracing', () => {
  it('withRequestContext rejects with TracingNotStartedError and does not run fn', async () => {
    let ran = false;
    const outcome = withRequestContext({ tenantId: 't1', userId: 'u1' }, () => {
      ran = true;
    });
    await expect(outcome).rejects.toThrow(TracingNotStartedError);
    await expect(outcome).rejects.toThrow(/startTracing\(\)/);
    expect(ran).toBe(false);
  });
});

describe('startTracing options', () => {
  const bad: Array<[string, Record<string, unknown>]> = [
    ['serviceName', {}],
    ['serviceName', { serviceName: '' }],
    ['serviceName', { serviceName: '   ' }],
    ['exporter', { serviceName: 's', exporter: 'bogus' }],
    ['exporter', { serviceName: 's', exporter: { export: 'not a function' } }],
    ['endpoint', { serviceName: 's', endpoint: 'not a url' }],
    ['endpoint', { serviceName: 's', endpoint: 'ftp://collector:4318' }],
    ['audit', { serviceName: 's', audit: 'loud' }],
    ['propagateTo', { serviceName: 's', propagateTo: 42 }],
    ['propagateTo', { serviceName: 's', propagateTo: ['ok.internal', 42] }],
    ['sharedStateStore', { serviceName: 's', sharedStateStore: {} }],
    ['recordToolArguments', { serviceName: 's', recordToolArguments: 'yes' }],
    ['redact', { serviceName: 's', redact: 'x' }],
    ['flushTimeoutMs', { serviceName: 's', flushTimeoutMs: -1 }],
    ['flushTimeoutMs', { serviceName: 's', flushTimeoutMs: Number.NaN }],
    ['maxQueueSize', { serviceName: 's', maxQueueSize: 1.5 }],
  ];

  it.each(bad)('rejects with a TypeError naming %s', async (option, options) => {
    const outcome = startTracing({ exporter: 'none', ...options } as unknown as TracingOptions);
    await expect(outcome).rejects.toThrow(TypeError);
    await expect(outcome).rejects.toThrow(`'${option}'`);
    // Nothing was set up: requests still say tracing is not started.
    await expect(withRequestContext({ tenantId: 't1', userId: 'u1' }, () => undefined)).rejects.toThrow(TracingNotStartedError);
  });

  it('rejects an unknown option with a TypeError naming it and the option it resembles', async () => {
    const outcome = startTracing({ serviceName: 's', exporter: 'none', propagate_to: ['api.internal'] } as unknown as TracingOptions);
    void outcome.then((started) => running.push(started), () => {}); // stopped after the test, should it start
    await expect(outcome).rejects.toThrow(TypeError);
    await expect(outcome).rejects.toThrow("unknown option 'propagate_to' (did you mean 'propagateTo'?)");
    await expect(withRequestContext({ tenantId: 't1', userId: 'u1' }, () => undefined)).rejects.toThrow(TracingNotStartedError);
  });

  it('names every unknown option, suggesting only what is close', async () => {
    const outcome = startTracing({ serviceName: 's', exporter: 'none', flushTimeout: 10, colour: 'blue' } as unknown as TracingOptions);
    void outcome.then((started) => running.push(started), () => {});
    await expect(outcome).rejects.toThrow(/unknown options 'flushTimeout' \(did you mean 'flushTimeoutMs'\?\), 'colour'\. Known options: serviceName, /);
  });

  it('rejects options that are not an object', async () => {
    await expect(startTracing(undefined as unknown as TracingOptions)).rejects.toThrow(TypeError);
  });

  it('accepts every documented option', async () => {
    const tracing = await start({
      serviceName: 'all-options',
      exporter: 'none',
      endpoint: 'http://127.0.0.1:4318',
      propagateTo: ['api.internal', 'https://peer.internal/v1/', /\.internal$/, (url: URL) => url.hostname === 'x'],
      audit: 'throw',
      sharedStateStore: new MemoryStore(),
      recordToolArguments: true,
      redact: (value: unknown) => value,
      flushTimeoutMs: 1000,
      maxQueueSize: 10,
    });
    expect(tracing.serviceName).toBe('all-options');
    await expect(withRequestContext({ tenantId: 't1', userId: 'u1' }, () => 'ran')).resolves.toBe('ran');
  });
});

describe('startTracing lifecycle', () => {
  it('rejects a second start with TracingAlreadyStartedError and keeps the first one working', async () => {
    const exporter = new CollectingExporter();
    const first = await start({ serviceName: 'first', exporter });
    await expect(startTracing({ serviceName: 'second', exporter: 'none' })).rejects.toThrow(TracingAlreadyStartedError);

    await withRequestContext({ tenantId: 't1', userId: 'u1', name: 'after-second-start' }, () => undefined);
    await first.forceFlush();
    const span = exporter.spans.find((s) => s.name === 'after-second-start');
    expect(span?.resource.attributes['service.name']).toBe('first');
  });

  it('can start again after shutdown; requests in between are served, without telemetry', async () => {
    const stoppedExporter = new CollectingExporter();
    const first = await startTracing({ serviceName: 'one', exporter: stoppedExporter });
    await first.shutdown();
    // Stopped is not "never started": the request runs with its context and SharedState, and exports nothing.
    const served = await withRequestContext({ tenantId: 't1', userId: 'u1', name: 'between' }, async (ctx) => {
      await ctx.sharedState.set('seen', true);
      return { tenantId: getRequestContext().tenantId, seen: await ctx.sharedState.get('seen') };
    });
    expect(served).toEqual({ tenantId: 't1', seen: true });
    expect(stoppedExporter.spans).toEqual([]);
    expect(first.stats()).toEqual({ ended: 0, exported: 0, failed: 0, dropped: 0 });

    const exporter = new CollectingExporter();
    const second = await start({ serviceName: 'two', exporter });
    await withRequestContext({ tenantId: 't1', userId: 'u1', name: 'on-second' }, () => undefined);
    await second.forceFlush();
    expect(exporter.spans.map((s) => s.name)).toContain('on-second');
  });

  it('shutdown is idempotent and shuts the exporter down once', async () => {
    const exporter = new CollectingExporter();
    const tracing = await startTracing({ serviceName: 'idempotent', exporter });
    await Promise.all([tracing.shutdown(), tracing.shutdown()]);
    await expect(tracing.shutdown()).resolves.toBeUndefined();
    expect(exporter.shutdownCalls).toBe(1);
  });

  it('hands finished spans to a custom SpanExporter on forceFlush', async () => {
    const exporter = new CollectingExporter();
    const tracing = await start({ serviceName: 'custom-exporter', exporter });
    const requestId = await withRequestContext({ tenantId: 't1', userId: 'u1', name: 'exported' }, (ctx) => ctx.requestId);
    await tracing.forceFlush();
    const span = exporter.spans.find((s) => s.name === 'exported');
    expect(span?.attributes['isotrace.request_id']).toBe(requestId);
    expect(span?.resource.attributes['service.name']).toBe('custom-exporter');
  });
});

/** Runs `fn` against a stand-in OTLP/HTTP collector on 127.0.0.1 that records what it receives. */
async function withCollector(fn: (url: string, received: Array<{ url: string | undefined; body: string }>) => Promise<void>): Promise<void> {
  const received: Array<{ url: string | undefined; body: string }> = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ url: req.url, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, received);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

describe('startTracing with the OTLP exporter', () => {
  it('never hangs when the collector is down: forceFlush and shutdown resolve and requests still work', async () => {
    const port = await closedPort();
    const tracing = await startTracing({ serviceName: 'no-collector', exporter: 'otlp', endpoint: `http://127.0.0.1:${port}`, flushTimeoutMs: 500 });
    running.push(tracing);
    await expect(withRequestContext({ tenantId: 't1', userId: 'u1' }, async () => 'still works')).resolves.toBe('still works');
    await expect(tracing.forceFlush()).resolves.toBeUndefined();
    await expect(tracing.shutdown()).resolves.toBeUndefined();
  });

  it('posts spans to <endpoint>/v1/traces', async () => {
    await withCollector(async (url, received) => {
      const tracing = await start({ serviceName: 'otlp-ok', exporter: 'otlp', endpoint: url, flushTimeoutMs: 5000 });
      await withRequestContext({ tenantId: 't1', userId: 'u1', name: 'sent-over-otlp' }, () => undefined);
      await tracing.forceFlush();
      // Shut down while the collector still answers, so nothing waits on a closed port.
      await tracing.shutdown();
      expect(received.map((r) => r.url)).toContain('/v1/traces');
      expect(received.some((r) => r.body.includes('sent-over-otlp'))).toBe(true);
    });
  });

  it.each(['/v1/traces', '/v1/traces/'])('an endpoint given as the traces URL (…%s) posts to it, and metrics beside it', async (suffix) => {
    const sink = await startOtlpSink();
    const peer = await listen((_req, res) => res.end('ok'));
    try {
      const tracing = await start({ serviceName: 'otlp-traces-url', exporter: 'otlp', endpoint: `${sink.url}${suffix}`, flushTimeoutMs: 5000 });
      // An outbound call, so the HTTP client metrics have something to export at shutdown.
      await withRequestContext({ tenantId: 't1', userId: 'u1', name: 'sent-to-traces-url' }, async () => (await fetch(peer.origin)).text());
      await tracing.shutdown();
      // The sink answers 404 to any other path (e.g. /v1/traces/v1/traces): only acknowledged exports count.
      expect(sink.spans().map((span) => span.name)).toContain('sent-to-traces-url');
      expect(tracing.stats()).toMatchObject({ failed: 0, dropped: 0 });
      expect(sink.metricsRequests).toBeGreaterThan(0);
      expect(sink.requests).toBe(sink.traceRequests + sink.metricsRequests);
    } finally {
      await peer.close();
      await sink.close();
    }
  });

  it('exports over HTTPS to a collector trusted through OTEL_EXPORTER_OTLP_CERTIFICATE', async () => {
    const tls = new URL('../../fixtures/tls/', import.meta.url);
    const received: string[] = [];
    const server = createHttpsServer({ cert: readFileSync(new URL('localhost-cert.pem', tls)), key: readFileSync(new URL('localhost-key.pem', tls)) }, (req, res) => {
      received.push(req.url ?? '');
      req.resume().on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const saved = process.env.OTEL_EXPORTER_OTLP_CERTIFICATE;
    process.env.OTEL_EXPORTER_OTLP_CERTIFICATE = fileURLToPath(new URL('localhost-cert.pem', tls));
    try {
      const tracing = await start({ serviceName: 'otlp-tls', endpoint: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, flushTimeoutMs: 5000 });
      await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => undefined);
      await tracing.shutdown();
      expect(tracing.stats()).toEqual({ ended: 1, exported: 1, failed: 0, dropped: 0 });
      expect(received).toContain('/v1/traces');
    } finally {
      if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_CERTIFICATE;
      else process.env.OTEL_EXPORTER_OTLP_CERTIFICATE = saved;
      server.closeAllConnections();
      server.close();
    }
  });

  it('honours OTEL_EXPORTER_OTLP_ENDPOINT when no endpoint is given', async () => {
    await withCollector(async (url, received) => {
      const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = url;
      try {
        const tracing = await start({ serviceName: 'otlp-env', flushTimeoutMs: 5000 });
        await withRequestContext({ tenantId: 't1', userId: 'u1', name: 'sent-by-env' }, () => undefined);
        await tracing.forceFlush();
        await tracing.shutdown();
      } finally {
        if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
        else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
      }
      expect(received.map((r) => r.url)).toContain('/v1/traces');
      expect(received.some((r) => r.body.includes('sent-by-env'))).toBe(true);
    });
  });
});

describe('outbound instrumentation across restarts', () => {
  /** A server that records the traceparent and baggage headers it receives. */
  async function recordingServer(): Promise<{ url: string; seen: Array<{ traceparent: unknown; baggage: unknown }>; close(): void }> {
    const seen: Array<{ traceparent: unknown; baggage: unknown }> = [];
    const server = createServer((req: IncomingMessage, res) => {
      seen.push({ traceparent: req.headers.traceparent, baggage: req.headers.baggage });
      res.end('ok');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, seen, close: () => server.close() };
  }

  it('fetch and node:http carry exactly one traceparent after each restart, and none once stopped', async () => {
    const target = await recordingServer();
    // Looked up at call time: a function reference taken before startTracing() is the unpatched one.
    const http = (await import('node:http')).default;
    const httpGet = (url: string): Promise<void> => new Promise((resolve, reject) => http.get(url, (res) => res.resume().on('end', resolve)).on('error', reject));
    try {
      for (let round = 0; round < 3; round++) {
        const exporter = new CollectingExporter();
        const tracing = await start({ serviceName: `restart-${round}`, exporter, propagateTo: [new URL(target.url).host] });
        await withRequestContext({ tenantId: 't', userId: 'u' }, async () => {
          await (await fetch(target.url)).text();
          await httpGet(target.url);
        });
        await tracing.shutdown();
        expect(exporter.spans.filter((span) => span.name === 'GET')).toHaveLength(2);
      }
      for (const { traceparent, baggage } of target.seen) {
        expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]$/);
        expect(baggage).toMatch(/^isotrace\./);
        expect(String(baggage)).not.toContain(',isotrace.correlation_id=');
      }
      expect(target.seen).toHaveLength(6);

      await (await fetch(target.url)).text();
      await httpGet(target.url);
      expect(target.seen.slice(6)).toEqual([
        { traceparent: undefined, baggage: undefined },
        { traceparent: undefined, baggage: undefined },
      ]);
    } finally {
      target.close();
    }
  });
});
