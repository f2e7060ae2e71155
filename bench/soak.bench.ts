// Soak: 1,000,000 requests through withRequestContext, each with its own tool system,
// one tool call and one SharedState write, in sequential batches of concurrent
// requests; RSS and heap sampled after a forced GC. Nothing of a finished request may
// stay behind (contexts, tool systems, SharedState handles), so memory after warm-up
// must stay flat.
// Target (issue 7): RSS growth under 5% between the 100k and 1M marks.
import { startTracing, withRequestContext } from 'isotrace';
import { createToolSystem, Tool } from 'isotrace/tools';
import { DiscardExporter } from './lib/discard-exporter.ts';
import { fmt, pick, QUICK, quickNote } from './lib/harness.ts';
import { table, writeSection } from './lib/report.ts';

const TOTAL = pick(1_000_000, 100_000);
// The first mark comes after warm-up: V8 grows its young generation (RSS, not heap) during the first tens of thousands.
const FIRST_MARK = pick(100_000, 50_000);
const SAMPLE_EVERY = pick(50_000, 10_000);
const CONCURRENCY = 100;
const TENANTS = 20;
const USERS = 500;

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
  await withRequestContext({ tenantId: `tenant-${i % TENANTS}`, userId: `user-${i % USERS}`, values: { plan: 'pro' } }, async (ctx) => {
    const { dispatcher } = createToolSystem([Lookup]);
    await dispatcher.execute('lookup', { q: `item-${i}` });
    await ctx.sharedState.set('last-request', i);
  });
}

interface Sample {
  requests: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  seconds: number;
}

const gc = globalThis.gc;
function sample(requests: number, started: bigint): Sample {
  gc?.();
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
  return { requests, rss, heapUsed, heapTotal, external, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

const started = process.hrtime.bigint();
const samples: Sample[] = [];
for (let done = 0; done < TOTAL; ) {
  const batch = Math.min(CONCURRENCY, TOTAL - done);
  await Promise.all(Array.from({ length: batch }, (_, k) => oneRequest(done + k)));
  done += batch;
  // As a server would between network events: the batch processor exports from timers and I/O callbacks.
  await new Promise((resolve) => setImmediate(resolve));
  if (done % SAMPLE_EVERY === 0 || done === FIRST_MARK) {
    samples.push(sample(done, started));
    const last = samples.at(-1)!;
    console.log(`${done.toLocaleString('en-US')} requests: RSS ${fmt(last.rss / 2 ** 20)} MB, heap ${fmt(last.heapUsed / 2 ** 20)} MB, ${fmt(last.seconds)} s`);
  }
}
await tracing.shutdown();
const stats = tracing.stats();

const mb = (bytes: number): string => fmt(bytes / 2 ** 20);
const first = samples.find((s) => s.requests === FIRST_MARK)!;
const last = samples.at(-1)!;
const rssGrowth = (last.rss - first.rss) / first.rss;
const heapGrowth = (last.heapUsed - first.heapUsed) / first.heapUsed;
const label = (n: number): string => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);

writeSection(
  'soak',
  `Soak: ${label(TOTAL)} requests`,
  `${table(
    ['requests', 'RSS (MB)', 'heap used (MB)', 'heap total (MB)', 'external (MB)', 'elapsed (s)'],
    samples.map((s) => [s.requests.toLocaleString('en-US'), mb(s.rss), mb(s.heapUsed), mb(s.heapTotal), mb(s.external), fmt(s.seconds)]),
  )}

Each request: withRequestContext (${TENANTS} tenants × ${USERS} users, one request value), a new tool system, one dispatcher.execute,
one SharedState write (MemoryStore); ${CONCURRENCY} requests at a time, batches one after another; spans through the batch processor
into a discarding exporter (${exporter.exported.toLocaleString('en-US')} spans exported, ${stats.dropped.toLocaleString('en-US')} dropped). Samples after a forced GC${gc ? '' : ' (unavailable: run with --expose-gc)'}.
From ${label(FIRST_MARK)} to ${label(TOTAL)} requests: RSS ${mb(first.rss)} → ${mb(last.rss)} MB (${rssGrowth >= 0 ? '+' : ''}${fmt(100 * rssGrowth)}%),
heap ${mb(first.heapUsed)} → ${mb(last.heapUsed)} MB (${heapGrowth >= 0 ? '+' : ''}${fmt(100 * heapGrowth)}%); ${fmt(TOTAL / last.seconds)} requests/s overall.
**Target: RSS growth under 5% between the ${label(FIRST_MARK)} and ${label(TOTAL)} marks — ${rssGrowth < 0.05 ? 'met' : 'MISSED'} (${rssGrowth >= 0 ? '+' : ''}${fmt(100 * rssGrowth)}%).**${
    QUICK ? ` (QUICK mode: the marks are ${label(FIRST_MARK)} and ${label(TOTAL)}.)` : ''
  }${quickNote()}`,
);
