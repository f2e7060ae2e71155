// Tool-call overhead: a bare async call, a hand-written OpenTelemetry span with the
// same GenAI attributes, and isotrace's audited dispatcher.execute — in one run.
// Target (issue 3): dispatcher.execute costs at most 1.5x the hand-written span.
import { randomUUID } from 'node:crypto';
import { SpanKind, trace } from '@opentelemetry/api';
import { startTracing, withRequestContext } from 'isotrace';
import { createToolSystem, Tool } from 'isotrace/tools';
import { DiscardExporter } from './lib/discard-exporter.ts';
import { fmt, measure, pick, quickNote } from './lib/harness.ts';
import { table, writeSection } from './lib/report.ts';

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? pick(20_000, 4_000));
const ROUNDS = pick(9, 5);

async function lookup(args: { q: string }): Promise<{ q: string }> {
  return args;
}

class Lookup extends Tool<{ q: string }, { q: string }> {
  static override toolName = 'lookup';
  static override description = 'Looks things up';
  run(args: { q: string }): Promise<{ q: string }> {
    return lookup(args);
  }
}

const exporter = new DiscardExporter();
const tracing = await startTracing({ serviceName: 'bench-tools', exporter, instrumentHttp: false });
const tracer = trace.getTracer('bench');
const args = { q: 'lamp' };

const results = await withRequestContext({ tenantId: 'bench', userId: 'u1' }, async () => {
  const { dispatcher } = createToolSystem([Lookup]);
  return measure(
    [
      {
        name: 'bare async call',
        run: async (n) => {
          for (let i = 0; i < n; i++) await lookup(args);
        },
      },
      {
        name: 'hand-written OpenTelemetry span',
        run: async (n) => {
          for (let i = 0; i < n; i++) {
            await tracer.startActiveSpan(
              'execute_tool lookup',
              { kind: SpanKind.INTERNAL, attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup', 'gen_ai.tool.call.id': `call_${randomUUID()}` } },
              async (span) => {
                try {
                  return await lookup(args);
                } finally {
                  span.end();
                }
              },
            );
          }
        },
      },
      {
        name: 'isotrace dispatcher.execute (4 audits)',
        run: async (n) => {
          for (let i = 0; i < n; i++) await dispatcher.execute('lookup', args);
        },
      },
    ],
    { iterations: ITERATIONS, rounds: ROUNDS },
  );
});
await tracing.shutdown();

const [bare, handWritten, isotrace] = results as [(typeof results)[0], (typeof results)[0], (typeof results)[0]];
const ratio = isotrace.nsPerOp / handWritten.nsPerOp;
writeSection(
  'tools',
  'Tool calls: dispatcher.execute vs a hand-written span',
  `${table(
    ['variant', 'ns per call (median)', 'vs hand-written span', 'CPU ns per call (median)'],
    results.map((r) => [r.name, fmt(r.nsPerOp), `${fmt(r.nsPerOp / handWritten.nsPerOp)}x`, fmt(r.cpuNsPerOp)]),
  )}

${ITERATIONS.toLocaleString('en-US')} sequential calls per round inside one request, ${ROUNDS} rounds, spans through a batch processor into a discarding exporter.
Span overhead alone: hand-written ${fmt(handWritten.nsPerOp - bare.nsPerOp)} ns, isotrace ${fmt(isotrace.nsPerOp - bare.nsPerOp)} ns per call.
**Target: dispatcher.execute ≤ 1.5x the hand-written span — ${ratio <= 1.5 ? 'met' : 'MISSED'} (${fmt(ratio)}x; CPU time ${fmt(isotrace.cpuNsPerOp / handWritten.cpuNsPerOp)}x).**${quickNote()}`,
);
