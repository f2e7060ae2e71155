// A SharedState store of the application's own runs in worker threads without going through the
// submitting thread: its workerRecipe() names a module and factory, and each worker opens its own
// instance on the same backend (here, a folder of files), as RedisStore does with Redis.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getSharedState, startTracing, withRequestContext } from 'isotrace';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createWorkerPool, type WorkerPool } from 'isotrace/workers';
import type { SeenInWorker } from '../../fixtures/workers/context-worker.ts';
import { FileStore } from '../../fixtures/workers/file-store.ts';

const CONTEXT_WORKER = new URL('../../fixtures/workers/context-worker.ts', import.meta.url);

describe('a custom store with a worker recipe', () => {
  let dir: string;
  let kit: TestTracing;
  let pool: WorkerPool;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'isotrace-file-store-'));
    kit = await setupTestTracing({ sharedStateStore: new FileStore({ dir }) });
    pool = createWorkerPool({ filename: CONTEXT_WORKER, maxThreads: 2, minThreads: 1 });
  });
  afterAll(async () => {
    await pool?.close();
    await kit?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is opened by each worker thread itself, on the same backend, per request scope', async () => {
    const results = await Promise.all(
      ['acme', 'globex', 'initech'].map((tenantId, i) =>
        withRequestContext({ tenantId, userId: 'u1' }, async () => {
          await getSharedState().set('counter', 10 * i);
          const seen = await pool.run<SeenInWorker>({});
          return { tenantId, seen: seen.counter, after: await getSharedState().get('counter') };
        }),
      ),
    );
    expect(results).toEqual([
      { tenantId: 'acme', seen: 1, after: 1 },
      { tenantId: 'globex', seen: 11, after: 11 },
      { tenantId: 'initech', seen: 21, after: 21 },
    ]);
    const openedBy = readFileSync(join(dir, 'opened.log'), 'utf8').trim().split('\n').map(Number);
    expect(openedBy.length).toBeGreaterThan(0);
    expect(openedBy.every((threadId) => threadId !== 0)).toBe(true);
  });

  it('startTracing() refuses a recipe that cannot name what to import, with a TypeError naming sharedStateStore', async () => {
    const store = Object.assign(new FileStore({ dir }), { workerRecipe: () => ({ kind: 'files' }) });
    await expect(startTracing({ serviceName: 's', exporter: 'none', sharedStateStore: store as never })).rejects.toThrow(/'sharedStateStore' must be a store whose workerRecipe\(\)/);
  });
});
