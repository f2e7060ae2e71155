// Worker hop: piscina's run alone vs isotrace's pool.run carrying the request
// context (trace, baggage, request snapshot, worker spans forwarded back) — same
// worker file, same trivial task, same thread count, in one run.
// Target (issue 15): a worker hop adds at most 15 µs (or 15%) per task over piscina's own run.
import { Piscina } from 'piscina';
import { startTracing, withRequestContext } from 'isotrace';
import { createWorkerPool } from 'isotrace/workers';
import { DiscardExporter } from './lib/discard-exporter.ts';
import { fmt, measure, pick, quickNote, type Variant } from './lib/harness.ts';
import { table, writeSection } from './lib/report.ts';
import { measureThreadWake } from './lib/thread-wake.ts';

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? pick(2_000, 500));
const ROUNDS = pick(9, 5);
const THREADS = 2;
const IN_FLIGHT = 32;
/** The issue's target: what isotrace may add per task, in ns, or as a ratio to piscina's time. */
const TARGET_ADDED_NS = 15_000;
const TARGET_RATIO = 1.15;
// defineWorkerTask runs plain piscina tasks as they are, so both pools load the same file.
const WORKER = new URL('../test/fixtures/workers/sum-worker.ts', import.meta.url);
const TASK = Array.from({ length: 16 }, (_, i) => i);

// First, alone: the machine's own cost of a thread hop, under piscina's and isotrace's alike.
const wake = await measureThreadWake(pick(5_000, 1_000));
const exporter = new DiscardExporter();
const tracing = await startTracing({ serviceName: 'bench-workers', exporter, instrumentHttp: false });
const piscina = new Piscina({ filename: WORKER.href, minThreads: THREADS, maxThreads: THREADS });
const pool = createWorkerPool({ filename: WORKER, minThreads: THREADS, maxThreads: THREADS });

type Submit = () => Promise<unknown>;

/** n tasks, one at a time: the latency of one hop. */
function sequential(submit: Submit): Variant['run'] {
  return async (n) => {
    for (let i = 0; i < n; i++) await submit();
  };
}

/** n tasks with IN_FLIGHT submitted at once: throughput with both threads busy. */
function concurrent(submit: Submit): Variant['run'] {
  return async (n) => {
    for (let done = 0; done < n; done += IN_FLIGHT) {
      await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, n - done) }, submit));
    }
  };
}

const runPiscina: Submit = () => piscina.run(TASK);
const runIsotrace: Submit = () => pool.run(TASK);

const results = await withRequestContext({ tenantId: 'bench', userId: 'u1', jobId: 'job-1', values: { plan: 'pro', locale: 'en' } }, () =>
  measure(
    [
      { name: `piscina run, 1 in flight`, run: sequential(runPiscina) },
      { name: `isotrace pool.run, 1 in flight`, run: sequential(runIsotrace) },
      { name: `piscina run, ${IN_FLIGHT} in flight`, run: concurrent(runPiscina) },
      { name: `isotrace pool.run, ${IN_FLIGHT} in flight`, run: concurrent(runIsotrace) },
    ],
    { iterations: ITERATIONS, rounds: ROUNDS },
  ),
);
await Promise.all([piscina.close(), pool.close()]);
await tracing.shutdown();

const [seqPiscina, seqIsotrace, parPiscina, parIsotrace] = results as [(typeof results)[0], (typeof results)[0], (typeof results)[0], (typeof results)[0]];
const us = (ns: number): string => fmt(ns / 1000);
const comparisons = [
  { mode: '1 in flight (latency)', base: seqPiscina, isotrace: seqIsotrace },
  { mode: `${IN_FLIGHT} in flight (throughput)`, base: parPiscina, isotrace: parIsotrace },
].map(({ mode, base, isotrace }) => {
  const addedNs = isotrace.nsPerOp - base.nsPerOp;
  const ratio = isotrace.nsPerOp / base.nsPerOp;
  const addedCpuNs = isotrace.cpuNsPerOp - base.cpuNsPerOp;
  const addedCallerCpuNs = isotrace.threadCpuNsPerOp - base.threadCpuNsPerOp;
  return { mode, base, isotrace, addedNs, ratio, addedCpuNs, addedCallerCpuNs, met: addedNs <= TARGET_ADDED_NS || ratio <= TARGET_RATIO };
});

writeSection(
  'workers',
  'Worker hop: piscina alone vs pool.run with context',
  `${table(
    ['mode', 'piscina run (µs/task)', 'isotrace pool.run (µs/task)', 'added per task (µs)', 'ratio', 'CPU per task, piscina / isotrace (µs)', 'CPU added per task (µs)', 'of it on the calling thread (µs)'],
    comparisons.map((c) => [
      c.mode,
      us(c.base.nsPerOp),
      us(c.isotrace.nsPerOp),
      us(c.addedNs),
      `${fmt(c.ratio)}x`,
      `${us(c.base.cpuNsPerOp)} / ${us(c.isotrace.cpuNsPerOp)}`,
      us(c.addedCpuNs),
      us(c.addedCallerCpuNs),
    ]),
  )}

${ITERATIONS.toLocaleString('en-US')} tasks per round and variant, ${ROUNDS} rounds (sum of ${TASK.length} numbers), ${THREADS} worker threads each, same worker file;
isotrace runs inside a request (2 context values, a job id), spans through a batch processor into a discarding exporter.
Each isotrace task is two spans (worker.run in the caller, worker.task in the worker, forwarded and exported by the caller),
each stamped with the request's identity, plus the context carrier and the span data crossing the thread boundary.
CPU time is process.cpuUsage() (every thread of the process) over the same rounds; the calling thread's alone is process.threadCpuUsage().
The machine's floor, measured first and alone: two threads that wake each other through Atomics.wait/notify (as piscina's
workers wait for tasks), doing nothing else, take ${us(wake.roundTripNs)} µs per round trip, ${us(wake.pingerCpuNs)} µs of it CPU on the waking thread.
Every hop pays two such wakes, in both modes: piscina gives a thread one task at a time, and the thread sleeps until the
calling thread has handled its reply and sent the next. So isotrace's work on both sides (the worker.run span, the carrier,
the worker's context and span, the reply's span) is on each task's path, and runs on threads that have just woken.
**Target: a worker hop adds at most ${us(TARGET_ADDED_NS)} µs (or ${fmt((TARGET_RATIO - 1) * 100)}%) per task over piscina's own run — ${comparisons
    .map((c) => `${c.mode}: ${c.met ? 'met' : 'MISSED'} (+${us(c.addedNs)} µs, ${fmt(c.ratio)}x)`)
    .join('; ')}.**${quickNote()}`,
);
