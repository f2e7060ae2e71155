// One process, several kits one after another (vitest `isolate: false`, or a file that forgot
// shutdown()): each set-up starts clean, and a replaced kit fails rather than pass stale spans.
import { describe, it, expect } from 'vitest';
import { startTracing, TracingAlreadyStartedError, withRequestContext } from 'isotrace';
import { expectNoCrossRequestLeakage, setupTestTracing } from 'isotrace/testing';

async function request(name: string): Promise<void> {
  await withRequestContext({ tenantId: 't1', userId: 'u1', name }, () => undefined);
}

describe('setupTestTracing in one process, again and again', () => {
  it('replaces a kit that is still running: the new one records, the old one throws', async () => {
    const first = await setupTestTracing({ serviceName: 'first' });
    await request('seen-by-first');
    const second = await setupTestTracing({ serviceName: 'second' });
    await request('seen-by-second');

    expect(second.spans().map((span) => span.name)).toEqual(['seen-by-second']);
    expect(second.spans()[0]?.resource.attributes['service.name']).toBe('second');
    expect(() => first.spans()).toThrow(/replaced by a later setupTestTracing\(\)/);

    // The old kit's shutdown (say, its file's afterAll) leaves the new kit running.
    await first.shutdown();
    await request('still-seen');
    expect(second.spans().map((span) => span.name)).toEqual(['seen-by-second', 'still-seen']);
    expectNoCrossRequestLeakage(second.spans());
    await second.shutdown();
  });

  it('starts again after a shutdown, and a shut-down kit keeps its spans', async () => {
    const first = await setupTestTracing();
    await request('one');
    await first.shutdown();
    const second = await setupTestTracing();
    await request('two');
    expect(first.spans().map((span) => span.name)).toEqual(['one']);
    expect(second.spans().map((span) => span.name)).toEqual(['two']);
    await second.shutdown();
  });

  it('never stops an isotrace that startTracing() started', async () => {
    const tracing = await startTracing({ serviceName: 'app', exporter: 'none', instrumentHttp: false });
    try {
      await expect(setupTestTracing()).rejects.toThrow(TracingAlreadyStartedError);
      await expect(startTracing({ serviceName: 'again', exporter: 'none' })).rejects.toThrow(TracingAlreadyStartedError);
    } finally {
      await tracing.shutdown();
    }
  });
});
