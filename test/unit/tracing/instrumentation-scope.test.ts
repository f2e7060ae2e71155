/**
 * Every span isotrace makes names its instrumentation scope `isotrace` with
 * the package's own version (what a backend shows as the library that
 * produced it), on the main thread and in worker threads alike.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { withRequestContext } from 'isotrace';
import { createToolSystem } from 'isotrace/tools';
import { createWorkerPool, type WorkerPool } from 'isotrace/workers';
import { Echo } from '../tools/tool-test-helpers.ts';
import { useTestTracing } from 'isotrace/testing';

const kit = useTestTracing();

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
const TOOL_WORKER = new URL('../../fixtures/workers/tool-worker.ts', import.meta.url);

describe('the instrumentation scope of isotrace’s spans', () => {
  let pool: WorkerPool | undefined;
  afterAll(async () => {
    await pool?.close();
  });

  it('is isotrace at the package.json version, for request and tool spans', async () => {
    expect(pkg.name).toBe('isotrace');
    await withRequestContext({ tenantId: 'acme', userId: 'u1', name: 'scoped-request' }, () => createToolSystem([Echo]).dispatcher.execute('echo', { q: 1 }));
    const ours = kit.spans().filter((span) => span.name === 'scoped-request' || span.name === 'execute_tool echo');
    expect(ours).toHaveLength(2);
    for (const span of ours) expect(span.instrumentationScope, span.name).toEqual(expect.objectContaining({ name: 'isotrace', version: pkg.version }));
  });

  it('is the same for spans made in a worker thread', async () => {
    pool = createWorkerPool({ filename: TOOL_WORKER, maxThreads: 1, minThreads: 1 });
    await withRequestContext({ tenantId: 'acme', userId: 'u1' }, () => pool!.run({ text: 'hello' }));
    const inWorker = kit.spans().filter((span) => span.name === 'execute_tool digest' || span.name.startsWith('worker.task'));
    expect(inWorker.length).toBeGreaterThanOrEqual(2);
    for (const span of inWorker) expect(span.instrumentationScope, span.name).toEqual(expect.objectContaining({ name: 'isotrace', version: pkg.version }));
  });
});
