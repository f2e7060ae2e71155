// createWorkerPool() option checks and the pool's plain-piscina behaviour when
// isotrace is not started (this file never starts tracing).
import { afterAll, describe, expect, it } from 'vitest';
import { createWorkerPool, type WorkerPool } from 'isotrace/workers';

const SUM_WORKER = new URL('../../fixtures/workers/sum-worker.ts', import.meta.url);

describe('createWorkerPool options', () => {
  const pools: WorkerPool[] = [];
  afterAll(async () => {
    await Promise.all(pools.map((pool) => pool.close()));
  });

  it.each([
    ['no options', undefined],
    ['null', null],
    ['no filename', {}],
    ['an empty filename', { filename: '' }],
    ['a numeric filename', { filename: 42 }],
  ])('throws a TypeError naming filename for %s', (_label, options) => {
    expect(() => createWorkerPool(options as never)).toThrow(TypeError);
    expect(() => createWorkerPool(options as never)).toThrow(/filename/);
  });

  it("passes piscina's option checks through as TypeErrors naming the option", () => {
    expect(() => createWorkerPool({ filename: SUM_WORKER, maxThreads: -1 })).toThrow(/maxThreads/);
    expect(() => createWorkerPool({ filename: SUM_WORKER, idleTimeout: -5 })).toThrow(/idleTimeout/);
  });

  it('accepts a file URL, a file: string and an absolute path', async () => {
    for (const filename of [SUM_WORKER, SUM_WORKER.href, SUM_WORKER.pathname]) {
      const pool = createWorkerPool({ filename, maxThreads: 1, minThreads: 0 });
      pools.push(pool);
      expect(await pool.run([1, 2, 3])).toBe(6);
    }
  });

  it('without isotrace started, pool.run is plain piscina: the task arrives as it was sent', async () => {
    const pool = createWorkerPool({ filename: SUM_WORKER, maxThreads: 1, minThreads: 1 });
    pools.push(pool);
    expect(await pool.run([10, 20, 12])).toBe(42);
    expect(pool.threads).toBe(1);
  });

  it('bad run() arguments reject (never throw) with the TypeError piscina gives', async () => {
    const pool = createWorkerPool({ filename: SUM_WORKER, maxThreads: 1, minThreads: 0 });
    pools.push(pool);
    const pending = pool.run([1], { name: 42 as never });
    await expect(pending).rejects.toThrow(TypeError);
  });
});
