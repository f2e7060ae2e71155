// SharedState in worker threads when the store lives in the submitting thread
// (workers/internal/shared-state-channel.ts): a store that answers with what cannot
// cross threads, or fails with an odd error, gives the worker a clear error at once,
// and the thread that owns the store keeps running.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { getSharedState, withRequestContext } from 'isotrace';
import { MemoryStore, type SharedStateScope } from 'isotrace/shared-state';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createWorkerPool, type WorkerPool } from 'isotrace/workers';
import { rejectionOf } from './worker-test-helpers.ts';

const CONTROL_WORKER = new URL('../../fixtures/workers/control-worker.ts', import.meta.url);

/** A custom store (served to workers over the channel: it has no worker recipe) with faulty keys. */
class FaultyStore extends MemoryStore {
  /** Set while a read of 'slow' waits: calling it answers the read. */
  answerSlow: (() => void) | undefined;

  override async get(scope: SharedStateScope, key: string): Promise<string | undefined> {
    if (key === 'slow') await new Promise<void>((resolve) => (this.answerSlow = resolve));
    if (key === 'unsendable') return { onRead: () => 1 } as unknown as string;
    if (key === 'odd-error') throw Object.assign(new Error('placeholder'), { message: { toString: () => 'odd store failure' } });
    return super.get(scope, key);
  }
}

describe('SharedState in a worker thread, served by the submitting thread', () => {
  let kit: TestTracing;
  let pool: WorkerPool;
  const store = new FaultyStore();
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    kit = await setupTestTracing({ sharedStateStore: store });
    pool = createWorkerPool({ filename: CONTROL_WORKER, maxThreads: 1, minThreads: 1 });
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await pool?.close();
    await kit?.shutdown();
  });

  const read = (key: string): Promise<unknown> => withRequestContext({ tenantId: 't1', userId: 'u1' }, () => pool.run({ key }, { name: 'readKey' }));

  it('a store answer that cannot be cloned fails the read with an error naming it; the owning thread has no unhandled rejection', async () => {
    const error = await rejectionOf(read('unsendable'));
    expect(error.name).toBe('SharedStateUnavailableError');
    expect(error.message).toMatch(/the store's answer cannot be sent to the worker thread/);
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);

    await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => getSharedState().set('plain', { ok: true }));
    expect(await read('plain')).toEqual({ ok: true });
  });

  it('a store error whose message is not text reaches the worker as that text', async () => {
    const error = await rejectionOf(read('odd-error'));
    expect(error.name).toBe('SharedStateUnavailableError');
    expect(error.message).toMatch(/odd store failure/);
    expect(unhandled).toEqual([]);
  });

  it('an answer that comes after its pool was destroyed is dropped quietly', async () => {
    const doomed = createWorkerPool({ filename: CONTROL_WORKER, maxThreads: 1, minThreads: 1 });
    const reading = rejectionOf(withRequestContext({ tenantId: 't1', userId: 'u1' }, () => doomed.run({ key: 'slow' }, { name: 'readKey' })));
    await vi.waitFor(() => expect(store.answerSlow).toBeDefined(), { timeout: 10_000 });
    await doomed.destroy();
    expect((await reading).message).toMatch(/Terminating worker thread/);

    store.answerSlow!();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(unhandled).toEqual([]);
  });
});
