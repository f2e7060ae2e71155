// A CPU-heavy tool that runs on a worker thread, called through each request's
// own tool dispatcher. Run after `npm run build`:  node examples/worker-tools/main.ts
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { startTracing, withRequestContext } from 'isotrace';
import { auditSpans } from 'isotrace/testing';
import { createToolSystem, Tool } from 'isotrace/tools';
import { createWorkerPool } from 'isotrace/workers';
import { auditLine, printTree, ranFor } from '../shared/trace-tree.ts';
import type { HashJob, HashResult } from './hash-worker.ts';

// Spans stay in memory: the example prints them instead of needing a collector.
const exporter = new InMemorySpanExporter();
const tracing = await startTracing({ serviceName: 'worker-tools-example', exporter });

// The pool is process-wide (it holds threads, not request data); each task carries its request's context.
const pool = createWorkerPool({ filename: new URL('./hash-worker.ts', import.meta.url), maxThreads: 2, minThreads: 1 });

class HashDocument extends Tool<HashJob, HashResult> {
  static override toolName = 'hash_document';
  static override description = 'Hashes a document many rounds on a worker thread';

  run(job: HashJob): Promise<HashResult> {
    return pool.run<HashResult>(job, { name: 'default' });
  }
}

const requests = [
  { tenantId: 'acme', userId: 'ada', document: 'Q3 report: revenue up 12%' },
  { tenantId: 'globex', userId: 'grace', document: 'Board minutes, 2 May' },
  { tenantId: 'acme', userId: 'alan', document: 'Onboarding checklist' },
];

const results = await Promise.all(
  requests.map(({ tenantId, userId, document }) =>
    withRequestContext({ tenantId, userId, name: 'agent.turn' }, async (ctx) => {
      const { dispatcher } = createToolSystem([HashDocument]);
      const result = await dispatcher.execute<HashResult>('hash_document', { document, rounds: 20_000 });
      return { requestId: ctx.requestId, tenantId, userId, result };
    }),
  ),
);

for (const { tenantId, userId, result } of results) {
  const ok = result.tenantId === tenantId && result.userId === userId;
  console.log(`${tenantId}/${userId}: ${result.digest.slice(0, 16)}… after ${result.rounds} rounds (worker saw ${result.tenantId}/${result.userId}${ok ? '' : ' — MISMATCH'})`);
}

await tracing.forceFlush();
const spans = exporter.getFinishedSpans();
// One request's tree: request → execute_tool → worker.run → worker.task → hash.rounds.
printTree(spans, results[0]!.requestId, {
  line: (span) => `${span.name}  ${(span.duration[0] * 1e3 + span.duration[1] / 1e6).toFixed(1)} ms  ${ranFor(span)}`,
});

const report = auditSpans(spans);
console.log(`\n${auditLine(report)}`);

await pool.close();
await tracing.shutdown();
const mismatches = results.filter(({ tenantId, userId, result }) => result.tenantId !== tenantId || result.userId !== userId);
process.exitCode = report.ok && mismatches.length === 0 && report.toolSpans === requests.length ? 0 : 1;

