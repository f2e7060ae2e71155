/**
 * Process faults while many other requests run: a worker thread that dies
 * mid-task (process.exit, an exception thrown from a timer), a child process
 * that dies (exit 1 mid-work, killed), a tool that leaves a rejected promise
 * unhandled, and a tool whose promise rejects. The failing request gets a
 * clear error and its span records it (status ERROR, an exception event);
 * every other request succeeds with its own context, and no span crosses
 * between them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { getRequestContext, withRequestContext, type RequestContext } from 'isotrace';
import { expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createToolSystem, Tool } from 'isotrace/tools';
import { contextToEnv, createWorkerPool, WorkerTaskError, type WorkerPool } from 'isotrace/workers';
import { createRandom, testSeed } from '../helpers/random.ts';
import { rejectionOf, startedFlag } from '../unit/workers/worker-test-helpers.ts';

const WORKER = new URL('../fixtures/faults/crashing-worker.ts', import.meta.url);
const CHILD = fileURLToPath(new URL('../fixtures/faults/dying-child.ts', import.meta.url));
const OTHERS = 150;

let kit: TestTracing;
let pool: WorkerPool;
const seed = testSeed();

interface Identity {
  requestId: string;
  tenantId: string;
  userId: string;
}

/** An in-process tool: the identity it runs for, after a random delay. */
class WhoAmI extends Tool<{ delayMs: number }, Identity> {
  static override toolName = 'whoami';
  async run({ delayMs }: { delayMs: number }): Promise<Identity> {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    const { requestId, tenantId, userId } = this.context;
    return { requestId, tenantId, userId };
  }
}

/** Starts a write it does not await; the write fails after the tool has answered. */
class FireAndForget extends Tool<{ note: string }, string> {
  static override toolName = 'fire_and_forget';
  async run({ note }: { note: string }): Promise<string> {
    void (async () => {
      await new Promise((resolve) => setImmediate(resolve));
      throw new Error(`background write of '${note}' failed`);
    })();
    return `accepted ${note}`;
  }
}

/** Its returned promise rejects. */
class Failing extends Tool<{ reason: string }, never> {
  static override toolName = 'failing';
  async run({ reason }: { reason: string }): Promise<never> {
    await new Promise((resolve) => setImmediate(resolve));
    throw new RangeError(`quota exceeded: ${reason}`);
  }
}

/**
 * `count` ordinary requests at once, with random delays: each calls an
 * in-process tool and (with `worker`) a worker task, and checks that both saw
 * its own identity. Resolves with their contexts.
 */
async function otherRequests(count: number, options: { worker?: boolean; flag?: Int32Array; child?: boolean } = {}): Promise<RequestContext[]> {
  const random = createRandom(seed);
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      withRequestContext({ tenantId: `other-${i % 10}`, userId: `user-${i}` }, async (ctx) => {
        const { dispatcher } = createToolSystem([WhoAmI]);
        const own = { requestId: ctx.requestId, tenantId: ctx.tenantId, userId: ctx.userId };
        expect(await dispatcher.execute('whoami', { delayMs: random.int(0, 20) })).toEqual(own);
        if (options.worker) expect(await pool.run({ flag: options.flag, delayMs: random.int(0, 20) }, { name: 'whoami' })).toEqual(own);
        if (options.child && i % 50 === 0) expect(await runChild('ok')).toEqual(own);
        return ctx;
      }),
    ),
  );
}

/** The spans of the given requests' traces. */
function spansOf(contexts: readonly RequestContext[]): ReadableSpan[] {
  const traces = new Set(contexts.map((ctx) => ctx.traceId));
  return kit.spans().filter((span) => traces.has(span.spanContext().traceId));
}

function requestSpan(tenantId: string): ReadableSpan {
  const span = kit.spans().find((s) => s.attributes['isotrace.request_span'] === true && s.attributes['isotrace.tenant_id'] === tenantId);
  expect(span, `request span of ${tenantId}`).toBeDefined();
  return span!;
}

/** Status ERROR with the error's message, `error.type`, and an exception event. */
function expectRecorded(span: ReadableSpan, errorType: string, message: RegExp): void {
  expect(span.status.code, span.name).toBe(SpanStatusCode.ERROR);
  expect(span.status.message).toMatch(message);
  expect(span.attributes['error.type']).toBe(errorType);
  const exception = span.events.find((event) => event.name === 'exception');
  expect(exception, `${span.name} has an exception event`).toBeDefined();
  expect(exception!.attributes?.['exception.type']).toBe(errorType);
  expect(String(exception!.attributes?.['exception.message'])).toMatch(message);
}

/** The application's way of running a child: contextToEnv(), and an Error that says how the child ended when it fails. */
function runChild(mode: 'ok' | 'exit1' | 'hang'): Promise<Identity> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, mode], { env: contextToEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      // Killed mid-work: once it says it is working.
      if (mode === 'hang' && stdout.includes('working\n')) child.kill('SIGKILL');
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve(JSON.parse(stdout.trim()) as Identity);
      else reject(new Error(`child '${mode}' died mid-work (${signal ? `killed by ${signal}` : `exit code ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`));
    });
  });
}

beforeAll(async () => {
  kit = await setupTestTracing();
  pool = createWorkerPool({ filename: WORKER, minThreads: 3, maxThreads: 3 });
  // Start the threads before the faults, so they happen while others are running.
  await withRequestContext({ tenantId: 'warm-up', userId: 'u' }, () => Promise.all(Array.from({ length: 3 }, () => pool.run({ delayMs: 10 }, { name: 'whoami' }))));
  console.log(`process-faults seed: ${seed} (replay with ISOTRACE_TEST_SEED=${seed})`);
});

afterEach(() => {
  kit.reset();
});

afterAll(async () => {
  await pool?.destroy();
  await kit?.shutdown();
});

describe('a worker thread that dies mid-task', () => {
  it.each([
    ['process.exit(3)', 'exitMidTask', /exitMidTask.*exited with code: 3/],
    ['an exception thrown from a timer', 'throwInTimer', /throwInTimer.*timer exploded in the worker/],
  ])('by %s: its request gets a WorkerTaskError recorded on its spans; 150 concurrent requests are untouched', async (_how, task, message) => {
    const flag = startedFlag();
    const failing = withRequestContext({ tenantId: 'crasher', userId: 'c1' }, () => pool.run({ flag }, { name: task }));
    const others = otherRequests(OTHERS, { worker: true, flag });
    const error = await rejectionOf(failing);
    const contexts = await others;

    expect(error).toBeInstanceOf(WorkerTaskError);
    expect(error.message).toMatch(message);
    expectRecorded(requestSpan('crasher'), 'WorkerTaskError', message);
    const run = kit.spans().find((span) => span.name === `worker.run ${task}`)!;
    expectRecorded(run, 'WorkerTaskError', message);

    expect(contexts).toHaveLength(OTHERS);
    expectNoCrossRequestLeakage(spansOf(contexts));
    // The pool replaced the thread: later requests still run.
    await expect(withRequestContext({ tenantId: 'after', userId: 'a1' }, () => pool.run<Identity>({}, { name: 'whoami' }))).resolves.toMatchObject({ tenantId: 'after' });
  });
});

describe('a child process that dies', () => {
  it.each([
    ['exits 1 mid-work', 'exit1', /child 'exit1' died mid-work \(exit code 1\)/],
    ['is killed mid-work', 'hang', /child 'hang' died mid-work \(killed by SIGKILL\)/],
  ] as const)('when it %s: its request fails with the error the app raised, recorded on the request span; concurrent requests (and their children) are untouched', async (_how, mode, message) => {
    const failing = withRequestContext({ tenantId: 'child-owner', userId: 'c1' }, () => runChild(mode));
    const others = otherRequests(OTHERS, { child: true });
    const error = await rejectionOf(failing);
    const contexts = await others;

    expect(error.message).toMatch(message);
    expectRecorded(requestSpan('child-owner'), 'Error', message);
    expect(contexts).toHaveLength(OTHERS);
    expectNoCrossRequestLeakage(spansOf(contexts));
  });
});

describe('a tool that fails', () => {
  it('leaving a rejected promise unhandled: the request completes with the tool’s result, the rejection reaches the process handler once; others are untouched', async () => {
    // vitest reports any unhandled rejection as a test failure: stand in for the application's own handler while this runs.
    const vitestHandlers = process.listeners('unhandledRejection');
    process.removeAllListeners('unhandledRejection');
    const unhandled: unknown[] = [];
    const settled = new Promise<void>((resolve) => {
      process.on('unhandledRejection', (reason) => {
        unhandled.push(reason);
        resolve();
      });
    });
    try {
      const result = withRequestContext({ tenantId: 'careless', userId: 'c1' }, async () => {
        const { dispatcher } = createToolSystem([FireAndForget]);
        return dispatcher.execute('fire_and_forget', { note: 'n-1' });
      });
      const contexts = await otherRequests(OTHERS);
      await expect(result).resolves.toBe('accepted n-1');
      await settled;

      expect(unhandled).toHaveLength(1);
      expect(unhandled[0]).toBeInstanceOf(Error);
      expect((unhandled[0] as Error).message).toBe("background write of 'n-1' failed");
      // As designed: the tool answered before its background work failed, so its span and request succeeded.
      const tool = kit.spans().find((span) => span.name === 'execute_tool fire_and_forget')!;
      expect(tool.status.code).not.toBe(SpanStatusCode.ERROR);
      expect(requestSpan('careless').status.code).not.toBe(SpanStatusCode.ERROR);
      expectNoCrossRequestLeakage(spansOf(contexts));
    } finally {
      process.removeAllListeners('unhandledRejection');
      for (const handler of vitestHandlers) process.on('unhandledRejection', handler);
    }
  });

  it('whose promise rejects: execute() rejects with the tool’s own error, recorded on the tool and request spans; others are untouched', async () => {
    const failing = withRequestContext({ tenantId: 'over-quota', userId: 'c1' }, async () => {
      const { dispatcher } = createToolSystem([Failing]);
      return dispatcher.execute('failing', { reason: 'tenant over-quota' });
    });
    const others = otherRequests(OTHERS);
    const error = await rejectionOf(failing);
    const contexts = await others;

    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toBe('quota exceeded: tenant over-quota');
    const tool = kit.spans().find((span) => span.name === 'execute_tool failing')!;
    expectRecorded(tool, 'RangeError', /quota exceeded: tenant over-quota/);
    expect(tool.attributes['isotrace.tenant_id']).toBe('over-quota');
    expectRecorded(requestSpan('over-quota'), 'RangeError', /quota exceeded/);
    expectNoCrossRequestLeakage(spansOf(contexts));
  });

  it('a request that catches the tool error answers normally and keeps the error on the tool span', async () => {
    const outcome = await withRequestContext({ tenantId: 'careful', userId: 'c1' }, async () => {
      const { dispatcher } = createToolSystem([Failing]);
      try {
        return await dispatcher.execute('failing', { reason: 'retry later' });
      } catch (error) {
        return { fallback: true, error: (error as Error).message, tenant: getRequestContext().tenantId };
      }
    });
    expect(outcome).toEqual({ fallback: true, error: 'quota exceeded: retry later', tenant: 'careful' });
    expectRecorded(kit.spans().find((span) => span.name === 'execute_tool failing')!, 'RangeError', /retry later/);
    expect(requestSpan('careful').status.code).not.toBe(SpanStatusCode.ERROR);
  });
});
