// Worker threads with RedisStore open their own Redis connection (no hop through the
// submitting thread), with the same atomic update semantics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getSharedState, withRequestContext } from 'isotrace';
import { RedisStore } from 'isotrace/shared-state';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createWorkerPool, type WorkerPool } from 'isotrace/workers';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

describe('SharedState from worker threads with RedisStore', () => {
  let redis: TestRedis;
  let store: RedisStore;
  let kit: TestTracing;
  let pool: WorkerPool;
  const identity = { tenantId: 'tenant-redis', userId: 'user-redis' };

  beforeAll(async () => {
    redis = await startRedis();
    store = new RedisStore({ url: redis.url });
    kit = await setupTestTracing({ sharedStateStore: store });
    pool = createWorkerPool({ filename: new URL('../fixtures/workers/isolation-worker.ts', import.meta.url), minThreads: 2, maxThreads: 2 });
  }, 120_000);

  afterAll(async () => {
    await pool?.close();
    await kit?.shutdown();
    await store?.close();
    await redis?.stop();
  });

  it('1,000 concurrent increments split between the main thread and workers end at exactly 1,000', async () => {
    const key = `counter-${Date.now()}`;
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        withRequestContext(identity, () => (i % 2 === 0 ? getSharedState().update<number>(key, (n) => (n ?? 0) + 1) : pool.run<number>({ key }, { name: 'increment' }))),
      ),
    );
    expect(results.toSorted((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(await withRequestContext(identity, () => getSharedState().get<number>(key))).toBe(1000);
  }, 120_000);

  it('workers keep reaching Redis after the main thread closed its own store: they connect directly', async () => {
    const key = `direct-${Date.now()}`;
    await store.close();
    const counts = await Promise.all(Array.from({ length: 20 }, () => withRequestContext(identity, () => pool.run<number>({ key }, { name: 'increment' }))));
    expect(counts.toSorted((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const check = new RedisStore({ url: redis.url });
    try {
      expect(await check.get(identity, key)).toBe('20');
    } finally {
      await check.close();
    }
  }, 120_000);
});
