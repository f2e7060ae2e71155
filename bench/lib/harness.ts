// Side-by-side micro benchmarks: every variant runs in every round, in an order
// that alternates between rounds, after a warm-up; we report the median.

/**
 * BENCH_QUICK=1: a sanity run of the whole suite in a few minutes (fewer
 * iterations, rounds and seconds); its figures are rough and say so in the report.
 */
export const QUICK = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';

/** `full` normally, `quick` in BENCH_QUICK mode. */
export function pick<T>(full: T, quick: T): T {
  return QUICK ? quick : full;
}

/** The note a report carries when it was made in QUICK mode. */
export function quickNote(): string {
  return QUICK ? '\n\n_QUICK mode (BENCH_QUICK=1): shortened run, figures are rough._' : '';
}

/** One contender: `run(n)` performs the operation n times. */
export interface Variant {
  name: string;
  run(iterations: number): Promise<void> | void;
}

export interface MeasureOptions {
  /** Operations per round and variant. */
  iterations: number;
  rounds?: number;
  warmupRounds?: number;
}

export interface VariantResult {
  name: string;
  /** Median nanoseconds per operation over the rounds (wall clock). */
  nsPerOp: number;
  /**
   * Median CPU nanoseconds per operation (process.cpuUsage: every thread of
   * the process). Less disturbed than wall time by other work on the machine.
   */
  cpuNsPerOp: number;
  /** Median CPU nanoseconds per operation of the calling thread alone (process.threadCpuUsage). */
  threadCpuNsPerOp: number;
  /** Each round's ns/op, in round order. */
  rounds: number[];
}

/** Measures all variants, interleaved, and returns their median ns/op. */
export async function measure(variants: readonly Variant[], options: MeasureOptions): Promise<VariantResult[]> {
  const { iterations, rounds = 9, warmupRounds = 2 } = options;
  const samples = new Map(variants.map((v) => [v.name, { wall: [] as number[], cpu: [] as number[], threadCpu: [] as number[] }]));
  for (let round = -warmupRounds; round < rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const variant of order) {
      const cpuBefore = process.cpuUsage();
      const threadCpuBefore = process.threadCpuUsage();
      const start = process.hrtime.bigint();
      await variant.run(iterations);
      const ns = Number(process.hrtime.bigint() - start) / iterations;
      const threadCpu = process.threadCpuUsage(threadCpuBefore);
      const cpu = process.cpuUsage(cpuBefore);
      if (round >= 0) {
        const sample = samples.get(variant.name)!;
        sample.wall.push(ns);
        sample.cpu.push(((cpu.user + cpu.system) * 1000) / iterations);
        sample.threadCpu.push(((threadCpu.user + threadCpu.system) * 1000) / iterations);
      }
    }
  }
  return variants.map((v) => {
    const { wall, cpu, threadCpu } = samples.get(v.name)!;
    return { name: v.name, nsPerOp: median(wall), cpuNsPerOp: median(cpu), threadCpuNsPerOp: median(threadCpu), rounds: wall };
  });
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Formats a number with a fixed number of significant digits for tables. */
export function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  return value >= 10 ** digits ? Math.round(value).toLocaleString('en-US') : Number(value.toPrecision(digits)).toString();
}
