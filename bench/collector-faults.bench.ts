// Collector down and slow: the same isotrace HTTP server (bench/lib/http-server.ts,
// its own process) under the same fixed request rate, exporting to a healthy sink,
// to a closed port, and to a sink that answers after 2 s. The application must not
// notice: latency and memory stay where the healthy run has them (the batch queue
// is bounded; what does not fit is dropped and counted), and shutdown returns
// within its timeout (flushTimeoutMs, default 5,000 ms).
// Targets (issue 7): p99 within 10% of healthy, RSS bounded, shutdown within its timeout.
import { fmt, median, pick, quickNote } from './lib/harness.ts';
import { Child, closedPort, load, type LoadResult } from './lib/load.ts';
import { table, writeSection } from './lib/report.ts';

const RATE = pick(1000, 500);
const CONNECTIONS = 50;
const WARMUP_SECONDS = pick(3, 1);
const SECONDS = pick(15, 4);
const ROUNDS = pick(2, 1);
const SLOW_MS = 2000;
const SHUTDOWN_TIMEOUT_MS = 5000;

interface Stats {
  ended: number;
  exported: number;
  failed: number;
  dropped: number;
}
interface Window {
  rss: number;
  elu: number;
  cpuMicros: number;
  stats: Stats;
}
interface Shutdown {
  shutdownMs: number;
  stats: Stats;
}
interface Run {
  load: LoadResult;
  window: Window;
  shutdown: Shutdown;
}

const { child: healthySink, first: healthy } = await Child.start<{ url: string }>('./otlp-sink.ts', ['0']);
const { child: slowSink, first: slow } = await Child.start<{ url: string }>('./otlp-sink.ts', [String(SLOW_MS)]);
const SCENARIOS = [
  { id: 'healthy', label: 'collector healthy', endpoint: `${healthy.url}/healthy/` },
  { id: 'down', label: 'collector down (closed port)', endpoint: `http://127.0.0.1:${await closedPort()}/` },
  { id: 'slow', label: `collector slow (answers after ${SLOW_MS / 1000} s)`, endpoint: `${slow.url}/slow/` },
] as const;
const runs = new Map<string, Run[]>(SCENARIOS.map((s) => [s.id, []]));

async function runScenario(scenario: (typeof SCENARIOS)[number]): Promise<Run> {
  const { child, first } = await Child.start<{ port: number }>('./http-server.ts', ['isotrace', scenario.endpoint]);
  const url = `http://127.0.0.1:${first.port}/`;
  await load({ url, connections: CONNECTIONS, duration: WARMUP_SECONDS, overallRate: RATE });
  await child.ask('begin');
  const result = await load({ url, connections: CONNECTIONS, duration: SECONDS, overallRate: RATE });
  const window = await child.ask<Window>('end');
  const shutdown = await child.ask<Shutdown>('shutdown');
  await child.stop();
  console.log(`${scenario.id.padEnd(8)} ${fmt(result.requestsPerSecond)} req/s, p99 ${result.latencyP99} ms, RSS ${fmt(window.rss / 2 ** 20)} MB, shutdown ${fmt(shutdown.shutdownMs)} ms`);
  return { load: result, window, shutdown };
}

for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? SCENARIOS : [...SCENARIOS].reverse();
  for (const scenario of order) runs.get(scenario.id)!.push(await runScenario(scenario));
}
await Promise.all([healthySink.stop(), slowSink.stop()]);

const summary = SCENARIOS.map((scenario) => {
  const list = runs.get(scenario.id)!;
  const last = list.at(-1)!;
  return {
    scenario,
    rps: median(list.map((r) => r.load.requestsPerSecond)),
    p50: median(list.map((r) => r.load.latencyP50)),
    p99: median(list.map((r) => r.load.latencyP99)),
    errors: list.reduce((sum, r) => sum + r.load.errors, 0),
    rssMb: median(list.map((r) => r.window.rss)) / 2 ** 20,
    cpuPerRequest: median(list.map((r) => r.window.cpuMicros / Math.max(1, r.load.total))),
    shutdownMs: Math.max(...list.map((r) => r.shutdown.shutdownMs)),
    // Counts of the last round: at the end of the load, and after shutdown.
    atEnd: last.window.stats,
    afterShutdown: last.shutdown.stats,
  };
});
const healthyRun = summary[0]!;
const count = (n: number): string => n.toLocaleString('en-US');
const p99Ratios = summary.slice(1).map((s) => ({ s, ratio: s.p99 / healthyRun.p99 }));
const rssRatios = summary.slice(1).map((s) => ({ s, ratio: s.rssMb / healthyRun.rssMb }));
const slowestShutdown = Math.max(...summary.map((s) => s.shutdownMs));

writeSection(
  'collector-faults',
  'Collector down and slow',
  `${table(
    ['exporter target', 'requests/s', 'p50 (ms)', 'p99 (ms)', 'p99 vs healthy', 'RSS (MB)', 'server CPU per request (µs)', 'spans ended', 'exported', 'failed', 'dropped', 'shutdown (ms)'],
    summary.map((s) => [
      s.scenario.label,
      fmt(s.rps),
      fmt(s.p50),
      fmt(s.p99),
      `${fmt(s.p99 / healthyRun.p99)}x`,
      fmt(s.rssMb),
      fmt(s.cpuPerRequest),
      count(s.afterShutdown.ended),
      count(s.afterShutdown.exported),
      count(s.afterShutdown.failed),
      count(s.afterShutdown.dropped),
      fmt(s.shutdownMs),
    ]),
  )}

The isotrace HTTP server of the HTTP benchmark (httpRequestContext + one tool call, batch processor, OTLP/HTTP exporter, default
maxQueueSize 2,048 and flushTimeoutMs ${count(SHUTDOWN_TIMEOUT_MS)}) in its own process, at a fixed ${count(RATE)} requests/s over ${CONNECTIONS} connections for
${SECONDS} s after ${WARMUP_SECONDS} s of warm-up; ${ROUNDS} round(s), each scenario a fresh process, medians; span counts from tracing.stats() of the last round,
after shutdown (dropped: queue full or still queued at shutdown; failed: in exports that failed). RSS after a forced GC at the end of the load.
Shutdown: the longest tracing.shutdown() of the scenario's rounds.${summary.some((s) => s.errors > 0) ? `\nErrors (connection errors, timeouts, non-2xx): ${summary.map((s) => `${s.scenario.id} ${s.errors}`).join(', ')}.` : ''}
**Target: p99 within 10% of healthy — ${p99Ratios.map(({ s, ratio }) => `${s.scenario.id}: ${ratio <= 1.1 ? 'met' : 'MISSED'} (${fmt(ratio)}x)`).join('; ')}.**
**Target: RSS bounded — ${rssRatios.map(({ s, ratio }) => `${s.scenario.id}: ${fmt(s.rssMb)} MB (${fmt(ratio)}x healthy)`).join('; ')}.**
**Target: shutdown within its timeout (${count(SHUTDOWN_TIMEOUT_MS)} ms) — ${slowestShutdown <= SHUTDOWN_TIMEOUT_MS + 250 ? 'met' : 'MISSED'} (slowest ${fmt(slowestShutdown)} ms).**${quickNote()}`,
);
