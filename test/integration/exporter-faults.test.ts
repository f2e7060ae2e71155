/**
 * Exporter faults against real local OTLP/HTTP sinks: a collector that is
 * down, slow, flapping, or answering 500/503. In every case the application's
 * requests succeed, forceFlush() and shutdown() resolve, memory stays bounded
 * by maxQueueSize, tracing.stats() accounts for every span (exported is what
 * the sink acknowledged) and the loss is reported once, as a count, on the
 * OpenTelemetry diagnostic logger. A healthy sink is the comparison: nothing lost.
 *
 * One isotrace runs at a time: each test starts its own and shuts it down.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { diag, DiagLogLevel, type DiagLogger } from '@opentelemetry/api';
import { startTracing, withRequestContext, type Tracing } from 'isotrace';
import { createToolSystem, Tool } from 'isotrace/tools';
import { exposeGc, heapAfterGc as heapAfterCollections, settles } from '../helpers/guards.ts';
import { closedPort } from '../helpers/net.ts';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.ts';
import { stopChild } from '../helpers/process.ts';

/**
 * Below the OTLP exporter's first retry backoff (>= 800 ms), so every export is
 * one attempt. A retry squeezed into the last milliseconds of the budget can
 * time out on the client after the sink accepted it (at-least-once delivery),
 * and 'exported == received' would then fail by chance, not by a bug.
 */
const FLUSH_TIMEOUT_MS = 750;
const MAX_QUEUE_SIZE = 512;
/** 10,000 requests of two spans each (the request span and one tool span). */
const FAULT_REQUESTS = 10_000;
const SPANS_PER_REQUEST = 2;
const LOSS_REPORT = /spans were not exported/;
/**
 * Far above what maxQueueSize lets the pipeline hold (~1 MiB, plus the spans
 * the test sink itself keeps: up to ~5 MiB when flapping). With an unbounded
 * queue the slow collector run grows by ~30 MiB before its flush.
 */
const HEAP_GROWTH_BOUND = 12 * 2 ** 20;

/** The tool each request calls: answers with the identity it runs under, after a turn of the event loop. */
class WhoAmI extends Tool<{ n: number }, { tenantId: string; userId: string; n: number }> {
  static override toolName = 'whoami';
  async run({ n }: { n: number }): Promise<{ tenantId: string; userId: string; n: number }> {
    await new Promise((resolve) => setImmediate(resolve));
    return { tenantId: this.context.tenantId, userId: this.context.userId, n };
  }
}

/** Collects what the OpenTelemetry diagnostic logger is told, at WARN and above. */
const diagnostics: string[] = [];
const collector: DiagLogger = {
  error: (message) => diagnostics.push(message),
  warn: (message) => diagnostics.push(message),
  info: () => {},
  debug: () => {},
  verbose: () => {},
};
const lossReports = (): string[] => diagnostics.filter((message) => LOSS_REPORT.test(message));

const gc = exposeGc();
const heapAfterGc = (): number => heapAfterCollections(gc!);

/**
 * Runs `count` application requests, `concurrency` at a time: each in its own
 * request context, calling a tool. Resolves with how many returned their own
 * identity; any failure rejects.
 */
async function runRequests(count: number, { concurrency = 500, offset = 0 } = {}): Promise<number> {
  let correct = 0;
  for (let start = 0; start < count; start += concurrency) {
    const wave = Array.from({ length: Math.min(concurrency, count - start) }, (_, i) => offset + start + i);
    const results = await Promise.all(
      wave.map((n) =>
        withRequestContext({ tenantId: `tenant-${n % 17}`, userId: `user-${n}` }, async () => {
          const { dispatcher } = createToolSystem([WhoAmI]);
          return dispatcher.execute<{ tenantId: string; userId: string; n: number }>('whoami', { n });
        }),
      ),
    );
    correct += results.filter((r) => r.tenantId === `tenant-${r.n % 17}` && r.userId === `user-${r.n}`).length;
  }
  return correct;
}

async function start(endpoint: string, flushTimeoutMs = FLUSH_TIMEOUT_MS): Promise<Tracing> {
  const started = await startTracing({ serviceName: 'exporter-faults', endpoint, flushTimeoutMs, maxQueueSize: MAX_QUEUE_SIZE });
  // Every test restarts isotrace: a restart must register OpenTelemetry's globals cleanly.
  expect(diagnostics.filter((message) => /duplicate registration/i.test(message))).toEqual([]);
  return started;
}

/** Span ids the sink acknowledged, each once (an export is never delivered twice). */
function expectNoDuplicates(sink: OtlpSink): void {
  const ids = sink.spans().map((span) => span.spanId);
  expect(new Set(ids).size).toBe(ids.length);
}

/**
 * The fault half of every scenario: 20,000 spans from 10,000 concurrent
 * requests against a failing collector. All requests succeed, forceFlush()
 * resolves, spans are lost (counted) and the heap does not keep them.
 */
async function runAgainstFault(tracing: Tracing): Promise<void> {
  await runRequests(200); // warm up: JIT, sockets, the exporter's first connections
  await settles(tracing.forceFlush(), 'forceFlush() (warm-up)');
  const before = gc ? heapAfterGc() : 0;

  await expect(settles(runRequests(FAULT_REQUESTS, { offset: 1000 }), 'requests')).resolves.toBe(FAULT_REQUESTS);
  // Measured before the flush too: a pipeline that kept every span would hold them all right now.
  const grownWhileFailing = gc ? heapAfterGc() - before : 0;
  await expect(settles(tracing.forceFlush(), 'forceFlush()')).resolves.toBeUndefined();
  const grownAfterFlush = gc ? heapAfterGc() - before : 0;

  if (gc) {
    for (const [when, grown] of [['before forceFlush', grownWhileFailing], ['after forceFlush', grownAfterFlush]] as const) {
      expect(grown, `${when}: heap grew by ${(grown / 2 ** 20).toFixed(2)} MiB over ${FAULT_REQUESTS * SPANS_PER_REQUEST} spans`).toBeLessThan(HEAP_GROWTH_BOUND);
    }
  } else {
    console.warn('exporter-faults: skipped the heap assertion, gc() could not be exposed in this process.');
  }
  const stats = tracing.stats();
  expect(stats.ended).toBeGreaterThanOrEqual((FAULT_REQUESTS + 200) * SPANS_PER_REQUEST);
  expect(stats.dropped + stats.failed, JSON.stringify(stats)).toBeGreaterThan(0);
  expect(stats.exported + stats.failed + stats.dropped).toBe(stats.ended);
  expect(lossReports(), 'the loss is reported at shutdown, not before').toEqual([]);
}

/** The recovery half: once the collector answers again, new spans arrive and exported is exactly what it acknowledged. */
async function recoverAndShutDown(tracing: Tracing, sink: OtlpSink): Promise<void> {
  const exportedBefore = tracing.stats().exported;
  await expect(settles(runRequests(100, { concurrency: 100, offset: 50_000 }), 'requests after recovery')).resolves.toBe(100);
  await expect(settles(tracing.forceFlush(), 'forceFlush() after recovery')).resolves.toBeUndefined();
  const stats = tracing.stats();
  expect(stats.exported - exportedBefore).toBeGreaterThanOrEqual(100 * SPANS_PER_REQUEST);
  expect(stats.exported).toBe(sink.spans().length);
  expectNoDuplicates(sink);
  await expectOneLossReport(tracing);
}

/** shutdown() resolves and reports the loss once, as the count stats() shows. */
async function expectOneLossReport(tracing: Tracing): Promise<void> {
  await expect(settles(tracing.shutdown(), 'shutdown()')).resolves.toBeUndefined();
  const { ended, dropped, failed } = tracing.stats();
  const reports = lossReports();
  expect(reports, diagnostics.join('\n')).toHaveLength(1);
  expect(reports[0]).toContain(`${dropped + failed} of ${ended} spans were not exported`);
  await tracing.shutdown(); // runs once: no second report
  expect(lossReports()).toHaveLength(1);
}

let sink: OtlpSink | undefined;
let tracing: Tracing | undefined;

beforeAll(() => {
  diag.setLogger(collector, DiagLogLevel.WARN);
});

afterEach(async () => {
  await tracing?.shutdown();
  await sink?.close();
  tracing = undefined;
  sink = undefined;
  diagnostics.length = 0;
});

afterAll(() => {
  diag.disable();
});

describe('exporter faults: requests succeed, flushes resolve, memory is bounded, losses are counted once', () => {
  it('a healthy collector (the comparison): nothing dropped or failed, exported == ended == what the sink received, no loss report, only OTLP traces and metrics sent', async () => {
    sink = await startOtlpSink();
    tracing = await start(sink.url);
    // Waves below the queue bound, flushed in between: the pipeline itself never has to drop.
    for (let wave = 0; wave < 10; wave++) {
      await expect(settles(runRequests(200, { concurrency: 200, offset: wave * 200 }), 'requests')).resolves.toBe(200);
      await settles(tracing.forceFlush(), 'forceFlush()');
    }
    const stats = tracing.stats();
    expect(stats).toEqual({ ended: 4000, exported: 4000, failed: 0, dropped: 0 });
    expect(sink.spans()).toHaveLength(4000);
    expectNoDuplicates(sink);
    await expect(settles(tracing.shutdown(), 'shutdown()')).resolves.toBeUndefined();
    expect(lossReports()).toEqual([]);
    // Exporting sends nothing but OTLP traces to the endpoint: the exports leave from the export thread, where no
    // instrumentation measures them (in-thread, the exporter's own requests made HTTP client metrics, exported at shutdown).
    expect(sink.contentTypes.every((type) => type === 'application/x-protobuf')).toBe(true);
    expect(sink.metricsRequests).toBe(0);
    expect(sink.requests).toBe(sink.traceRequests);
  });

  it('collector DOWN (closed port), then up on that port: requests succeed, spans fail and drop, exported == received after it comes up', async () => {
    const port = await closedPort();
    tracing = await start(`http://127.0.0.1:${port}`);
    await runAgainstFault(tracing);
    expect(tracing.stats().exported).toBe(0);
    expect(tracing.stats().failed).toBeGreaterThan(0);

    sink = await startOtlpSink({ port });
    await recoverAndShutDown(tracing, sink);
  });

  it('collector SLOW (answers after 3 s, flushTimeoutMs 1 s): forceFlush and shutdown still resolve; exports time out as failed', async () => {
    sink = await startOtlpSink({ delayMs: 3000 });
    tracing = await start(sink.url, 1000);
    await runAgainstFault(tracing);
    expect(tracing.stats().failed).toBeGreaterThan(0);

    sink.respondWith({ delayMs: 0 });
    await recoverAndShutDown(tracing, sink);
  });

  it('collector FLAPPING (200, 503, connection dropped, 500 in turn): exported == what the sink acknowledged', async () => {
    sink = await startOtlpSink({ statusCycle: [200, 503, 0, 500] });
    tracing = await start(sink.url);
    await runAgainstFault(tracing);
    const stats = tracing.stats();
    expect(stats.failed).toBeGreaterThan(0);
    expect(stats.exported).toBe(sink.spans().length);

    sink.respondWith({ statusCycle: [] });
    await recoverAndShutDown(tracing, sink);
  });

  it.each([500, 503])('collector answering %i: every export fails and is counted; exported == received after it recovers', async (status) => {
    sink = await startOtlpSink({ status });
    tracing = await start(sink.url);
    await runAgainstFault(tracing);
    expect(tracing.stats().exported).toBe(0);
    expect(tracing.stats().failed).toBeGreaterThan(0);
    expect(sink.traceRequests).toBeGreaterThan(0);

    sink.respondWith({ status: 200 });
    await recoverAndShutDown(tracing, sink);
  });

  it('backs off from a failing collector: far fewer export attempts than batches, every skipped span counted, and delivery resumes once it answers', async () => {
    sink = await startOtlpSink({ status: 503 });
    tracing = await start(sink.url);
    // Waves with a pause between them, so the batch processor gets to export each full batch (512 spans = 256 requests).
    const waves = 40;
    for (let wave = 0; wave < waves; wave++) {
      await expect(runRequests(300, { offset: wave * 300 })).resolves.toBe(300);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // Without the back-off each full batch would be sent; with it, a failure pauses exports for 1 s, 2 s, 4 s…
    expect(sink.traceRequests).toBeGreaterThan(0);
    expect(sink.traceRequests).toBeLessThan(waves / 4);
    expect(tracing.stats().failed).toBeGreaterThan(0);

    // forceFlush() exports even while backing off; its success ends the back-off, so delivery resumes at once.
    sink.respondWith({ status: 200 });
    await settles(tracing.forceFlush(), 'forceFlush() once the collector answers');
    await recoverAndShutDown(tracing, sink);
  });

  it('a collector that never recovers: shutdown() resolves and reports the whole loss once', async () => {
    sink = await startOtlpSink({ status: 503 });
    tracing = await start(sink.url);
    await expect(settles(runRequests(2000), 'requests')).resolves.toBe(2000);
    await expectOneLossReport(tracing);
    const { ended, exported } = tracing.stats();
    expect(exported).toBe(0);
    expect(ended).toBe(4000);
    expect(lossReports()[0]).toContain('4000 of 4000 spans were not exported');
  });
});

const EXPORT_AT_SHUTDOWN = fileURLToPath(new URL('../fixtures/faults/export-at-shutdown.ts', import.meta.url));
/** How long the child may take to exit by itself before the test kills it and fails (its flushTimeoutMs is 1 s). */
const EXIT_GUARD_MS = 20_000;

/**
 * A collector on 127.0.0.1 that accepts every POST, answers 200 and then
 * sends the body one byte every 500 ms, for ever: each byte resets the
 * client's idle timeout, so only closing the socket ends the export.
 */
async function startTricklingCollector(): Promise<{ url: string; paths: string[]; close(): Promise<void> }> {
  const paths: string[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    const timer = setInterval(() => res.write(' '), 500);
    timers.add(timer);
    res.once('close', () => {
      clearInterval(timer);
      timers.delete(timer);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    paths,
    close: async () => {
      for (const timer of timers) clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a collector that trickles its answer', () => {
  it('cannot keep the process alive after shutdown() resolved: the export sockets are closed and their spans count as failed, not dropped', async () => {
    const collector = await startTricklingCollector();
    const child = spawn(process.execPath, [EXPORT_AT_SHUTDOWN, collector.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
    const guard = setTimeout(() => void stopChild(child, 1000), EXIT_GUARD_MS);
    try {
      const [code, signal] = await exited;
      expect(signal, `the process did not exit by itself within ${EXIT_GUARD_MS} ms of starting; it printed: ${stdout}${stderr}`).toBeNull();
      expect(code, stderr).toBe(0);
    } finally {
      clearTimeout(guard);
      await collector.close();
    }
    // The span really was in an export the collector was trickling when shutdown() gave up on it.
    expect(collector.paths).toContain('/v1/traces');
    expect(JSON.parse(stdout.trim())).toEqual({ ended: 1, exported: 0, failed: 1, dropped: 0 });
  });
});
