// isotrace's one process-wide handle: startTracing() and setupTestTracing() do their work before
// they return (the handle is usable at once and can still be awaited), shutdown() undoes what is
// process-wide at once, and a request keeps the runtime it was started under across a restart.
import { afterEach, describe, expect, it } from 'vitest';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { startTracing, TracingAlreadyStartedError, tryGetRequestContext, withRequestContext, type Tracing } from 'isotrace';
import { setupTestTracing } from 'isotrace/testing';
import { createToolSystem, Tool } from 'isotrace/tools';

const running: Array<{ shutdown(): Promise<void> }> = [];

afterEach(async () => {
  for (const handle of running.splice(0)) await handle.shutdown();
});

class CollectingExporter implements SpanExporter {
  readonly spans: ReadableSpan[] = [];
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.spans.push(...spans);
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
}

class Ping extends Tool {
  static override toolName = 'ping';
  run(): string {
    return 'pong';
  }
}

describe('startTracing() is synchronous and awaitable', () => {
  it('returns the handle itself: usable on the next line without await', async () => {
    const exporter = new CollectingExporter();
    const tracing = startTracing({ serviceName: 'sync-start', exporter });
    running.push(tracing);
    expect(tracing.serviceName).toBe('sync-start');
    await withRequestContext({ tenantId: 't1', userId: 'u1', name: 'served-at-once' }, () => undefined);
    await tracing.forceFlush();
    expect(exporter.spans.map((span) => span.name)).toContain('served-at-once');
  });

  it('awaiting it gives the same handle, which is not itself a thenable', async () => {
    const tracing: Tracing = await startTracing({ serviceName: 'awaited-start', exporter: 'none' });
    running.push(tracing);
    expect(tracing.serviceName).toBe('awaited-start');
    expect('then' in tracing).toBe(false);
    expect(tracing.stats()).toEqual({ ended: 0, exported: 0, failed: 0, dropped: 0 });
  });

  it('a failed start never throws synchronously: it returns a rejected promise', async () => {
    running.push(startTracing({ serviceName: 'first', exporter: 'none' }));
    let outcome: PromiseLike<unknown> | undefined;
    expect(() => (outcome = startTracing({ serviceName: 'second', exporter: 'none' }))).not.toThrow();
    await expect(outcome).rejects.toThrow(TracingAlreadyStartedError);
  });

  it('setupTestTracing() returns the kit itself, recording at once; awaiting it gives the same kit', async () => {
    const kit = setupTestTracing({ serviceName: 'sync-kit' });
    running.push(kit);
    await withRequestContext({ tenantId: 't1', userId: 'u1', name: 'kit-request' }, () => undefined);
    expect(kit.spans().map((span) => span.name)).toContain('kit-request');
    const awaited = await kit;
    expect(awaited.spans().map((span) => span.name)).toContain('kit-request');
    expect('then' in awaited).toBe(false);
  });
});

describe('shutdown() and restarts', () => {
  it('undoes what is process-wide before it returns: a new start may follow without awaiting the flush', async () => {
    const first = startTracing({ serviceName: 'first', exporter: 'none' });
    const flushed = first.shutdown();
    const second = startTracing({ serviceName: 'second', exporter: new CollectingExporter() });
    running.push(second);
    expect(second.serviceName).toBe('second');
    await flushed;
    await expect(withRequestContext({ tenantId: 't1', userId: 'u1' }, () => 'served')).resolves.toBe('served');
  });

  it('a request keeps the runtime it started under: after a restart its spans never reach the next run', async () => {
    const before = new CollectingExporter();
    const after = new CollectingExporter();
    const first = startTracing({ serviceName: 'first', exporter: before });
    let resume: () => void = () => {};
    const paused = new Promise<void>((resolve) => (resume = resolve));
    const inFlight = withRequestContext({ tenantId: 'old', userId: 'u1', name: 'old-request' }, async () => {
      await paused;
      await createToolSystem([Ping]).dispatcher.execute('ping');
      return tryGetRequestContext()?.traceId;
    });
    await first.shutdown();
    const second = startTracing({ serviceName: 'second', exporter: after });
    running.push(second);
    resume();
    const oldTraceId = await inFlight;
    await withRequestContext({ tenantId: 'new', userId: 'u1', name: 'new-request' }, () => createToolSystem([Ping]).dispatcher.execute('ping'));
    await second.forceFlush();
    expect(after.spans.filter((span) => span.spanContext().traceId === oldTraceId)).toEqual([]);
    expect(after.spans.map((span) => span.name)).toEqual(expect.arrayContaining(['new-request', 'execute_tool ping']));
  });
});
