// Soak: 1,000,000 requests through withRequestContext, each with its own tool system,
// one tool call and one SharedState write, in sequential batches of concurrent
// requests; RSS and heap sampled after a forced GC. Nothing of a finished request may
// stay behind (contexts, tool systems, SharedState handles), so memory after warm-up
// must stay flat.
// Target (issues 7 and 15): RSS flat over 1M requests: under 5% growth between the 100k and 1M
// marks apart from V8's young generation (which V8 sizes itself and empties at every scavenge),
// and old space used (where a leak piles up) under 5%.
//
// RSS also moves when V8 resizes its young generation (new space): it doubles it, up to
// its maximum, each time the bytes that survived scavenges since the last doubling exceed
// its size, so how many requests that takes depends on how little each request leaves
// alive, not on anything kept. The table therefore shows new space and old space apart,
// and a second process runs the same load on plain OpenTelemetry (bench/lib/soak-otel-reference.ts)
// so a reader can tell isotrace's growth from V8's.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startTracing, withRequestContext } from 'isotrace';
import { createToolSystem, Tool } from 'isotrace/tools';
import { DiscardExporter } from './lib/discard-exporter.ts';
import { fmt, QUICK, quickNote } from './lib/harness.ts';
import { table, writeSection } from './lib/report.ts';
import { growth, runSoak, SOAK_CONCURRENCY, SOAK_FIRST_MARK, SOAK_TENANTS, SOAK_TOTAL, SOAK_USERS, type SoakSample } from './lib/soak-load.ts';
import type { ReferenceReport } from './lib/soak-otel-reference.ts';

class Lookup extends Tool<{ q: string }, { q: string; hits: number }> {
  static override toolName = 'lookup';
  static override description = 'Looks things up';
  async run(args: { q: string }): Promise<{ q: string; hits: number }> {
    await Promise.resolve();
    return { q: args.q, hits: 3 };
  }
}

const exporter = new DiscardExporter();
const tracing = await startTracing({ serviceName: 'bench-soak', exporter, instrumentHttp: false });

async function oneRequest(i: number): Promise<void> {
  await withRequestContext({ tenantId: `tenant-${i % SOAK_TENANTS}`, userId: `user-${i % SOAK_USERS}`, values: { plan: 'pro' } }, async (ctx) => {
    const { dispatcher } = createToolSystem([Lookup]);
    await dispatcher.execute('lookup', { q: `item-${i}` });
    await ctx.sharedState.set('last-request', i);
  });
}

const mb = (bytes: number): string => fmt(bytes / 2 ** 20);
const label = (n: number): string => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);
const signed = (value: number, text: string): string => `${value >= 0 ? '+' : ''}${text}`;
const percent = (ratio: number): string => signed(ratio, `${fmt(100 * ratio)}%`);

const samples = await runSoak(oneRequest, (s) =>
  console.log(`${s.requests.toLocaleString('en-US')} requests: RSS ${mb(s.rss)} MB, heap ${mb(s.heapUsed)} MB, new space ${mb(s.newSpace)} MB, ${fmt(s.seconds)} s`),
);
await tracing.shutdown();
const stats = tracing.stats();
const reference = runReference();

/** The plain OpenTelemetry run, in its own process with this process's flags (--expose-gc), or why it failed. */
function runReference(): ReferenceReport | string {
  const file = fileURLToPath(new URL('./lib/soak-otel-reference.ts', import.meta.url));
  const result = spawnSync(process.execPath, [...process.execArgv, file], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 2 ** 24 });
  if (result.status !== 0) {
    process.exitCode = 1;
    return `the reference run failed (exit ${result.status ?? result.signal})`;
  }
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as ReferenceReport;
}

/** The marks at which new space changed size after the first mark, e.g. "64 → 128 MB between the 150k and 200k marks". */
function newSpaceSteps(run: readonly SoakSample[]): string {
  const steps: string[] = [];
  for (let k = 1; k < run.length; k++) {
    const [before, after] = [run[k - 1]!, run[k]!];
    if (after.requests > SOAK_FIRST_MARK && after.newSpace !== before.newSpace) {
      steps.push(`${mb(before.newSpace)} → ${mb(after.newSpace)} MB between the ${label(before.requests)} and ${label(after.requests)} marks`);
    }
  }
  const first = run.find((s) => s.requests === SOAK_FIRST_MARK)!;
  return steps.length ? steps.join(', ') : `none (${mb(first.newSpace)} MB from the ${label(SOAK_FIRST_MARK)} mark on)`;
}

/** RSS, heap, new space and old space from the first mark to the last, as one paragraph. */
function growthSummary(run: readonly SoakSample[]): string {
  const rss = growth(run, 'rss');
  const heap = growth(run, 'heapUsed');
  const young = growth(run, 'newSpace');
  const old = growth(run, 'oldSpace');
  const oldUsed = growth(run, 'oldSpaceUsed');
  // New space is a reserved size and RSS a resident one, so the two growths need not match to the megabyte.
  const rest = rss.bytes - young.bytes;
  const beyond =
    young.bytes > 0 && rest <= 0
      ? `new space's growth covers all of RSS's`
      : `RSS growth beyond new space's: ${signed(rest, mb(rest))} MB (${percent(rest / rss.from)} of RSS at ${label(SOAK_FIRST_MARK)})`;
  return `RSS ${mb(rss.from)} → ${mb(rss.to)} MB (${percent(rss.ratio)}, ${signed(rss.bytes, mb(rss.bytes))} MB); heap used ${mb(heap.from)} → ${mb(heap.to)} MB (${percent(heap.ratio)});
new space (V8's young generation, reserved) ${mb(young.from)} → ${mb(young.to)} MB (${signed(young.bytes, mb(young.bytes))} MB; steps after the ${label(SOAK_FIRST_MARK)} mark: ${newSpaceSteps(run)});
old space ${mb(old.from)} → ${mb(old.to)} MB reserved, ${mb(oldUsed.from)} → ${mb(oldUsed.to)} MB used; ${beyond}.`;
}

/**
 * The target's figures: RSS apart from V8's young generation (new space, both semi-spaces: V8 sizes it itself, up to a
 * fixed maximum, and empties it at every scavenge, so nothing a request keeps stays there: what survives is promoted to
 * old space), and old space used, where a leak would pile up; both from the first mark to the last.
 */
function retainedGrowth(run: readonly SoakSample[]): { rss: number; oldUsed: number; met: boolean } {
  const first = run.find((s) => s.requests === SOAK_FIRST_MARK)!;
  const last = run.at(-1)!;
  const beyondYoung = (s: SoakSample): number => s.rss - s.newSpace;
  const rss = (beyondYoung(last) - beyondYoung(first)) / beyondYoung(first);
  const oldUsed = (last.oldSpaceUsed - first.oldSpaceUsed) / first.oldSpaceUsed;
  return { rss, oldUsed, met: rss < 0.05 && oldUsed < 0.05 };
}

function referenceSection(): string {
  if (typeof reference === 'string') return `**Plain OpenTelemetry reference: ${reference}.**`;
  const rss = growth(reference.samples, 'rss');
  return `### Reference: the same load on plain OpenTelemetry (no isotrace, its own process)

${table(
  ['requests', 'RSS (MB)', 'heap used (MB)', 'heap total (MB)', 'new space (MB)', 'old space used (MB)', 'elapsed (s)'],
  reference.samples.map((s) => [s.requests.toLocaleString('en-US'), mb(s.rss), mb(s.heapUsed), mb(s.heapTotal), mb(s.newSpace), mb(s.oldSpaceUsed), fmt(s.seconds)]),
)}

Each request by hand: a request span (tenant, user and a UUID request id as baggage and attributes) in its own context, a child
tool span around an awaited step, one write to a Map; BatchSpanProcessor (queue 2048) into the same discarding exporter
(${reference.exported.toLocaleString('en-US')} spans exported). From ${label(SOAK_FIRST_MARK)} to ${label(SOAK_TOTAL)} requests: ${growthSummary(reference.samples)}
The reference's RSS growth over the target's marks: ${percent(rss.ratio)} (for comparison only; the target is isotrace's).
At the ${label(SOAK_TOTAL)} mark: RSS ${mb(samples.at(-1)!.rss)} MB with isotrace, ${mb(rss.to)} MB for the reference; new space ${mb(samples.at(-1)!.newSpace)} and ${mb(reference.samples.at(-1)!.newSpace)} MB.`;
}

const rssGrowth = growth(samples, 'rss').ratio;
const last = samples.at(-1)!;
const retained = retainedGrowth(samples);

writeSection(
  'soak',
  `Soak: ${label(SOAK_TOTAL)} requests`,
  `${table(
    ['requests', 'RSS (MB)', 'heap used (MB)', 'heap total (MB)', 'new space (MB)', 'old space (MB)', 'old space used (MB)', 'external (MB)', 'elapsed (s)'],
    samples.map((s) => [
      s.requests.toLocaleString('en-US'),
      mb(s.rss),
      mb(s.heapUsed),
      mb(s.heapTotal),
      mb(s.newSpace),
      mb(s.oldSpace),
      mb(s.oldSpaceUsed),
      mb(s.external),
      fmt(s.seconds),
    ]),
  )}

Each request: withRequestContext (${SOAK_TENANTS} tenants × ${SOAK_USERS} users, one request value), a new tool system, one dispatcher.execute,
one SharedState write (MemoryStore); ${SOAK_CONCURRENCY} requests at a time, batches one after another; spans through the batch processor
into a discarding exporter (${exporter.exported.toLocaleString('en-US')} spans exported, ${stats.dropped.toLocaleString('en-US')} dropped). Samples after a forced GC${globalThis.gc ? '' : ' (unavailable: run with --expose-gc)'}.
New space is V8's young generation (both semi-spaces, reserved): V8 doubles it, up to its maximum, each time more bytes have
survived scavenges since the last doubling than it holds, so the fewer bytes a request leaves alive, the later the last doubling
comes; old space is where anything a finished request kept would pile up.
From ${label(SOAK_FIRST_MARK)} to ${label(SOAK_TOTAL)} requests: ${growthSummary(samples)} ${fmt(SOAK_TOTAL / last.seconds)} requests/s overall.
RSS growth between the ${label(SOAK_FIRST_MARK)} and ${label(SOAK_TOTAL)} marks, young generation included: ${percent(rssGrowth)}.
**Target: RSS flat (growth under 5%) between the ${label(SOAK_FIRST_MARK)} and ${label(SOAK_TOTAL)} marks apart from V8's young generation, and old space used flat — ${
    retained.met ? 'met' : 'MISSED'
  } (RSS beyond new space ${percent(retained.rss)}, old space used ${percent(retained.oldUsed)}).**${
    QUICK ? ` (QUICK mode: the marks are ${label(SOAK_FIRST_MARK)} and ${label(SOAK_TOTAL)}.)` : ''
  }

${referenceSection()}${quickNote()}`,
);
