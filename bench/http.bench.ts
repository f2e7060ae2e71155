// HTTP server throughput and latency: the same handler (a few awaits and one tool
// call) served five ways, each in its own process (instrumentation hooks must not
// meet), under autocannon with 100 connections. Spans go over OTLP/HTTP to a local
// sink (its own process) that counts and discards them. Rounds alternate the order
// of the variants after a warm-up; figures are medians. V2 and V3, which the target
// compares, run back to back in every round: their per-round ratio is reported too.
// Targets (issue 15): V3 isotrace ≥ 100% of V2's requests/s with event-loop CPU per request ≤ V2's and every
// span delivered; V3 ≥ 2x V4's requests/s. (Issue 7's: V3 ≥ 70% of V0.)
import { availableParallelism } from 'node:os';
import { fmt, median, pick, quickNote } from './lib/harness.ts';
import { Child, load, type LoadResult } from './lib/load.ts';
import { table, writeSection } from './lib/report.ts';

const CONNECTIONS = 100;
const WARMUP_SECONDS = pick(5, 1);
const SECONDS = pick(10, 3);
const ROUNDS = pick(7, 2);

const VARIANTS = [
  { id: 'bare', label: 'V0 bare node:http', exports: false },
  { id: 'als', label: 'V1 raw AsyncLocalStorage', exports: false },
  { id: 'otel-attributes', label: "V2' hand-written OpenTelemetry with isotrace's attributes", exports: true },
  { id: 'otel', label: 'V2 hand-written OpenTelemetry (SERVER + tool span)', exports: true },
  { id: 'isotrace', label: 'V3 isotrace (httpRequestContext + dispatcher.execute)', exports: true },
  { id: 'isotrace-in-thread', label: "V3' isotrace, spans exported on the event loop (batch processor + OTLP/JSON exporter)", exports: true },
  { id: 'auto', label: 'V4 auto-instrumentations-node + the tool span', exports: true },
] as const;
type VariantId = (typeof VARIANTS)[number]['id'];

interface Ready {
  port: number;
}
interface Window {
  rss: number;
  heapUsed: number;
  elu: number;
  /** Server CPU time (all threads) during the window, µs. */
  cpuMicros: number;
  /** CPU time of the server's event-loop thread during the window, µs. */
  mainCpuMicros: number;
}
interface Shutdown {
  shutdownMs: number;
  stats?: { ended: number; exported: number; failed: number; dropped: number };
}

const { child: sink, first: sinkReady } = await Child.start<{ url: string }>('./otlp-sink.ts', []);
/** A measured round: the server's window, and what the load generator (this process) and the sink spent on it. */
interface Round extends Window {
  cpuPerRequest: number;
  mainCpuPerRequest: number;
  loadCpuPerRequest: number;
  sinkCpuPerRequest: number;
}
const servers = new Map<VariantId, { child: Child; url: string; requests: number; loads: LoadResult[]; windows: Round[] }>();
for (const variant of VARIANTS) {
  const { child, first } = await Child.start<Ready>('./http-server.ts', [variant.id, `${sinkReady.url}/${variant.id}/`]);
  servers.set(variant.id, { child, url: `http://127.0.0.1:${first.port}/`, requests: 0, loads: [], windows: [] });
}

async function run(id: VariantId, seconds: number, record: boolean): Promise<void> {
  const server = servers.get(id)!;
  await server.child.ask('begin');
  const sinkBefore = await sink.ask<{ cpuMicros: number }>('cpu');
  const loadBefore = process.cpuUsage();
  const result = await load({ url: server.url, connections: CONNECTIONS, duration: seconds });
  const loadCpu = process.cpuUsage(loadBefore);
  const window = await server.child.ask<Window>('end');
  const sinkAfter = await sink.ask<{ cpuMicros: number }>('cpu');
  server.requests += result.total;
  if (record) {
    const per = (micros: number): number => micros / Math.max(1, result.total);
    server.loads.push(result);
    server.windows.push({
      ...window,
      cpuPerRequest: per(window.cpuMicros),
      mainCpuPerRequest: per(window.mainCpuMicros),
      loadCpuPerRequest: per(loadCpu.user + loadCpu.system),
      sinkCpuPerRequest: per(sinkAfter.cpuMicros - sinkBefore.cpuMicros),
    });
  }
  console.log(`${id.padEnd(9)} ${record ? 'round ' : 'warm-up'} ${fmt(result.requestsPerSecond)} req/s, p99 ${result.latencyP99} ms, ELU ${fmt(window.elu)}`);
}

for (const variant of VARIANTS) await run(variant.id, WARMUP_SECONDS, false);
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
  for (const variant of order) await run(variant.id, SECONDS, true);
}

const shutdowns = new Map<VariantId, Shutdown>();
for (const variant of VARIANTS) {
  const server = servers.get(variant.id)!;
  shutdowns.set(variant.id, await server.child.ask<Shutdown>('shutdown'));
  await server.child.stop();
}
const { counts } = await sink.ask<{ counts: Record<string, number> }>('counts');
await sink.stop();

// The table in the variants' numbering (V2 before V2'), whatever order they run in.
const rows = [...VARIANTS].sort((a, b) => (a.label < b.label ? -1 : 1)).map((variant) => {
  const server = servers.get(variant.id)!;
  const spans = counts[`/${variant.id}`] ?? 0;
  return {
    variant,
    rps: median(server.loads.map((l) => l.requestsPerSecond)),
    p50: median(server.loads.map((l) => l.latencyP50)),
    p99: median(server.loads.map((l) => l.latencyP99)),
    errors: server.loads.reduce((sum, l) => sum + l.errors, 0),
    rssMb: median(server.windows.map((w) => w.rss)) / 2 ** 20,
    elu: median(server.windows.map((w) => w.elu)),
    cpuPerRequest: median(server.windows.map((w) => w.cpuPerRequest)),
    mainCpuPerRequest: median(server.windows.map((w) => w.mainCpuPerRequest)),
    loadCpuPerRequest: median(server.windows.map((w) => w.loadCpuPerRequest)),
    sinkCpuPerRequest: median(server.windows.map((w) => w.sinkCpuPerRequest)),
    spans,
    spansPerRequest: spans / server.requests,
    requests: server.requests,
  };
});
const rowOf = (id: VariantId): (typeof rows)[number] => rows.find((r) => r.variant.id === id)!;
const rpsOf = (id: VariantId): number => rowOf(id).rps;
const v3ToV2 = rpsOf('isotrace') / rpsOf('otel');
const v3ToV4 = rpsOf('isotrace') / rpsOf('auto');
const v3ToV0 = rpsOf('isotrace') / rpsOf('bare');
const v3ToSameData = rpsOf('isotrace') / rpsOf('otel-attributes');
// Round by round, V3 against the V2 run just before or after it (the same load on the machine): the ratios' median and range.
interface RoundRatios {
  median: number;
  low: number;
  high: number;
}
const perRound = (of: (id: VariantId, round: number) => number): RoundRatios => {
  const ratios = servers.get('isotrace')!.loads.map((_, round) => of('isotrace', round) / of('otel', round));
  return { median: median(ratios), low: Math.min(...ratios), high: Math.max(...ratios) };
};
const pairedRps = perRound((id, round) => servers.get(id)!.loads[round]!.requestsPerSecond);
const pairedMainCpu = perRound((id, round) => servers.get(id)!.windows[round]!.mainCpuPerRequest);
const percentRange = (ratios: RoundRatios): string => `${fmt(100 * ratios.median)}% (rounds ${fmt(100 * ratios.low)}–${fmt(100 * ratios.high)}%)`;
const isotraceStats = shutdowns.get('isotrace')?.stats;
// Two spans per request reached the sink, and isotrace's own count dropped none (the sink may count a span twice only if it was sent twice).
const v3Delivered = rowOf('isotrace').spansPerRequest >= 2 && isotraceStats?.dropped === 0 && isotraceStats.failed === 0;
const verdict = (met: boolean, figure: string): string => `${met ? 'met' : 'MISSED'} (${figure})`;
// What 2x V4 asks of this machine: its cores' CPU time per request at that rate, less what the load generator and the sink spend per request.
const cores = availableParallelism();
const twiceV4 = 2 * rpsOf('auto');
const machinePerRequest = (cores * 1e6) / twiceV4;
const serverBudget = machinePerRequest - rowOf('isotrace').loadCpuPerRequest - rowOf('isotrace').sinkCpuPerRequest;

writeSection(
  'http',
  'HTTP server: throughput and latency with spans exported',
  `${table(
    ['variant', 'requests/s (median)', 'vs V0', 'vs V2', 'server CPU per request (µs)', 'event-loop thread CPU per request (µs)', 'load generator / sink CPU per request (µs)', 'p50 latency (ms)', 'p99 latency (ms)', 'RSS (MB)', 'event-loop utilization', 'spans received', 'spans per request'],
    rows.map((r) => [
      r.variant.label,
      fmt(r.rps),
      `${fmt((100 * r.rps) / rpsOf('bare'))}%`,
      r.variant.exports ? `${fmt((100 * r.rps) / rpsOf('otel'))}%` : '–',
      fmt(r.cpuPerRequest),
      fmt(r.mainCpuPerRequest),
      `${fmt(r.loadCpuPerRequest)} / ${fmt(r.sinkCpuPerRequest)}`,
      fmt(r.p50),
      fmt(r.p99),
      fmt(r.rssMb),
      fmt(r.elu, 2),
      r.variant.exports ? r.spans.toLocaleString('en-US') : '–',
      r.variant.exports ? fmt(r.spansPerRequest) : '–',
    ]),
  )}

${CONNECTIONS} connections; ${ROUNDS} rounds of ${SECONDS} s per variant in alternating order after a ${WARMUP_SECONDS} s warm-up; medians over rounds.
V2 and V3 run back to back in every round; round by round, V3's requests/s are ${percentRange(pairedRps)} of V2's, its event-loop CPU per request ${percentRange(pairedMainCpu)} of V2's (medians of the rounds' ratios).
Each server runs in its own process; the load generator and the OTLP sink (counts spans from the JSON or protobuf bodies, discards them) run in two more,
on the same machine. V2' is V2 with the attributes isotrace's spans carry (request identity on both spans, the HTTP and GenAI attributes):
against it, V3 keeps ${fmt(100 * v3ToSameData)}% of the requests/s, the rest of the gap to V2 is the cost of recording and exporting that data.
Server CPU per request (user + system time of the server process, every thread, over the responses it sent) is the figure least disturbed by other load on the machine;
event-loop thread CPU (process.threadCpuUsage()) leaves out the export thread (V3) and V8's helper threads. V3' is V3 with its spans exported on the event loop, as before the export thread.
RSS is measured after a forced GC at the end of each round; event-loop utilization over each round, in the server.
Spans per request: spans the sink received after each server flushed at shutdown, over all requests sent (warm-up included); 2 is every span delivered.${
    isotraceStats ? `\nisotrace's own count at shutdown: ${isotraceStats.ended.toLocaleString('en-US')} spans ended, ${isotraceStats.exported.toLocaleString('en-US')} exported, ${isotraceStats.dropped.toLocaleString('en-US')} dropped (queue full), ${isotraceStats.failed.toLocaleString('en-US')} in failed exports.` : ''
  }${rows.some((r) => r.errors > 0) ? `\nErrors (connection errors, timeouts, non-2xx): ${rows.map((r) => `${r.variant.id} ${r.errors}`).join(', ')}.` : ''}
**Target (issue 15), judged round by round (V3 against the V2 run beside it): V3 ≥ 100% of V2's requests/s — ${verdict(pairedRps.median >= 1, `${fmt(100 * pairedRps.median)}%; medians ${fmt(100 * v3ToV2)}%`)}; V3's event-loop CPU per request ≤ V2's — ${verdict(
    pairedMainCpu.median <= 1,
    `${fmt(100 * pairedMainCpu.median)}%; medians ${fmt(rowOf('isotrace').mainCpuPerRequest)} vs ${fmt(rowOf('otel').mainCpuPerRequest)} µs; whole process ${fmt(rowOf('isotrace').cpuPerRequest)} vs ${fmt(rowOf('otel').cpuPerRequest)} µs`,
  )}; every span delivered — ${verdict(v3Delivered, `${fmt(rowOf('isotrace').spansPerRequest)} spans per request, ${isotraceStats?.dropped ?? '?'} dropped`)}; V3 ≥ 2x V4 — ${verdict(v3ToV4 >= 2, `${fmt(v3ToV4)}x`)}.**
What V3 ≥ 2x V4 asks here: ${fmt(twiceV4)} requests/s, which gives ${fmt(machinePerRequest)} µs of CPU per request over the machine's ${cores} cores;
the load generator and the sink take ${fmt(rowOf('isotrace').loadCpuPerRequest)} and ${fmt(rowOf('isotrace').sinkCpuPerRequest)} µs of it at V3, leaving the server ${fmt(serverBudget)} µs (all its threads),
against ${fmt(rowOf('otel').cpuPerRequest)} µs for V2 and ${fmt(rowOf('bare').cpuPerRequest)} µs for V0 (no spans at all).
Earlier target (issue 7): V3 ≥ 70% of bare V0 with export on — ${verdict(v3ToV0 >= 0.7, `${fmt(100 * v3ToV0)}%`)}.${quickNote()}`,
);
