// Tool-call overhead: a bare async call, a hand-written OpenTelemetry span with the
// same GenAI attributes, and isotrace's audited dispatcher.execute — in one run.
// Target (issue 15): dispatcher.execute costs at most 1.2x the hand-written span.
import { trace } from '@opentelemetry/api';
import { startTracing, withRequestContext } from 'isotrace';
import { createToolSystem } from 'isotrace/tools';
import { DiscardExporter } from './lib/discard-exporter.ts';
import { fmt, measure, pick, quickNote } from './lib/harness.ts';
import { table, writeSection } from './lib/report.ts';
import { Lookup, toolCallVariants } from './lib/tool-call.ts';

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? pick(20_000, 4_000));
const ROUNDS = pick(9, 5);

const exporter = new DiscardExporter();
const tracing = await startTracing({ serviceName: 'bench-tools', exporter, instrumentHttp: false });
const tracer = trace.getTracer('bench');

const results = await withRequestContext({ tenantId: 'bench', userId: 'u1' }, async () => {
  const { dispatcher } = createToolSystem([Lookup]);
  return measure(toolCallVariants(tracer, dispatcher), { iterations: ITERATIONS, rounds: ROUNDS });
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
**Target: dispatcher.execute ≤ 1.2x the hand-written span — ${ratio <= 1.2 ? 'met' : 'MISSED'} (${fmt(ratio)}x; CPU time ${fmt(isotrace.cpuNsPerOp / handWritten.cpuNsPerOp)}x).**${quickNote()}`,
);
