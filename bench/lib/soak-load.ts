// The soak's load and its memory marks, shared by the isotrace run (bench/soak.bench.ts)
// and the plain OpenTelemetry reference run (bench/lib/soak-otel-reference.ts), so both
// see the same requests, batches and marks.
import { getHeapSpaceStatistics } from 'node:v8';
import { pick } from './harness.ts';

export const SOAK_TOTAL = pick(1_000_000, 100_000);
/** The mark the target's growth is measured from (issue 7). */
export const SOAK_FIRST_MARK = pick(100_000, 50_000);
export const SOAK_SAMPLE_EVERY = pick(50_000, 10_000);
export const SOAK_CONCURRENCY = 100;
export const SOAK_TENANTS = 20;
export const SOAK_USERS = 500;

/** Memory after a forced GC at one mark; bytes. */
export interface SoakSample {
  requests: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  /**
   * V8's young generation (its two semi-spaces), reserved size. V8 doubles it,
   * up to its maximum, once enough bytes have survived scavenges since the last
   * doubling: a step in heap total and RSS that says nothing about what is retained.
   */
  newSpace: number;
  /** Old generation, reserved size (old space: where whatever a request left behind would pile up). */
  oldSpace: number;
  /** Bytes in use in the old space after the GC. */
  oldSpaceUsed: number;
  external: number;
  seconds: number;
}

/** Forces a full GC (needs --expose-gc) and reads the process's memory. */
export function sampleMemory(requests: number, started: bigint): SoakSample {
  globalThis.gc?.();
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
  const spaces = new Map(getHeapSpaceStatistics().map((s) => [s.space_name, s]));
  return {
    requests,
    rss,
    heapUsed,
    heapTotal,
    newSpace: spaces.get('new_space')?.space_size ?? 0,
    oldSpace: spaces.get('old_space')?.space_size ?? 0,
    oldSpaceUsed: spaces.get('old_space')?.space_used_size ?? 0,
    external,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  };
}

/**
 * Runs SOAK_TOTAL requests, SOAK_CONCURRENCY at a time in batches one after
 * another, and samples memory at the first mark and every SOAK_SAMPLE_EVERY.
 */
export async function runSoak(oneRequest: (i: number) => Promise<void>, onSample: (sample: SoakSample) => void = () => {}): Promise<SoakSample[]> {
  const started = process.hrtime.bigint();
  const samples: SoakSample[] = [];
  for (let done = 0; done < SOAK_TOTAL; ) {
    const batch = Math.min(SOAK_CONCURRENCY, SOAK_TOTAL - done);
    await Promise.all(Array.from({ length: batch }, (_, k) => oneRequest(done + k)));
    done += batch;
    // As a server would between network events: the batch processor exports from timers and I/O callbacks.
    await new Promise((resolve) => setImmediate(resolve));
    if (done % SOAK_SAMPLE_EVERY === 0 || done === SOAK_FIRST_MARK) {
      samples.push(sampleMemory(done, started));
      onSample(samples.at(-1)!);
    }
  }
  return samples;
}

/** The growth between the first mark and the last: absolute (bytes) and relative. */
export function growth(samples: readonly SoakSample[], field: keyof Omit<SoakSample, 'requests' | 'seconds'>): { from: number; to: number; bytes: number; ratio: number } {
  const from = samples.find((s) => s.requests === SOAK_FIRST_MARK)![field];
  const to = samples.at(-1)![field];
  return { from, to, bytes: to - from, ratio: (to - from) / from };
}
