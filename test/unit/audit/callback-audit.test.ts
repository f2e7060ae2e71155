// The `callback-owner` check (option auditCallbacks; on by default in the test kit): a listener added
// by request A that runs inside request B is recorded like the other run-time checks, while the
// emitter and event-target semantics the application relies on stay exactly as they were.
import { EventEmitter, once } from 'node:events';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { bindToRequest, IsolationViolationError, startTracing, tryGetRequestContext, withRequestContext, type RequestContext } from 'isotrace';
import { auditSpans, expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';

const A = { tenantId: 'tenant-a', userId: 'user-a', name: 'request-a' };
const B = { tenantId: 'tenant-b', userId: 'user-b', name: 'request-b' };

/** Runs `register` inside request A, then `fire` inside request B; returns both contexts. */
async function addInAFireInB(register: () => void, fire: () => void): Promise<{ a: RequestContext; b: RequestContext }> {
  const a = await withRequestContext(A, (ctx) => {
    register();
    return ctx;
  });
  const b = await withRequestContext(B, (ctx) => {
    fire();
    return ctx;
  });
  return { a, b };
}

function requestSpan(kit: TestTracing, requestId: string): ReadableSpan {
  const span = kit.spans().find((s) => s.attributes['isotrace.request_id'] === requestId && s.attributes['isotrace.request_span'] === true);
  if (!span) throw new Error(`no request span for ${requestId}`);
  return span;
}

function callbackEvents(span: ReadableSpan): Array<Record<string, unknown>> {
  return span.events.filter((e) => e.name === 'isotrace.isolation_violation' && e.attributes?.['isotrace.audit.check'] === 'callback-owner').map((e) => ({ ...e.attributes }));
}

/** Asserts the one callback-owner violation of a leak from A into B, as a user sees it on B's span, the counter and the kit. */
async function expectCaught(kit: TestTracing, before: number, { a, b }: { a: RequestContext; b: RequestContext }): Promise<void> {
  expect(await kit.violationCount('callback-owner')).toBe(before + 1);
  const span = requestSpan(kit, b.requestId);
  expect(span.attributes['isotrace.audit.result']).toBe('violation');
  expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'isolation violation: callback-owner' });
  const [event, ...more] = callbackEvents(span);
  expect(more).toEqual([]);
  expect(event?.['isotrace.audit.expected']).toBe(`request ${a.requestId} (tenant tenant-a, user user-a)`);
  expect(event?.['isotrace.audit.actual']).toBe(`request ${b.requestId} (tenant tenant-b, user user-b)`);
  // The kit keeps where the listener was added: this test file, not isotrace's wrappers.
  expect(event?.['isotrace.audit.registered_at']).toContain('callback-audit.test.ts');
  expect(event?.['isotrace.audit.registered_at']).not.toContain('listener-wrappers');
  expect(auditSpans(kit.spans()).violationsByCheck['callback-owner']).toBe(1);
  expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(/callback-owner/);
}

describe('callback-owner in the test kit (on by default)', () => {
  let kit: TestTracing;
  beforeAll(async () => {
    kit = await setupTestTracing();
  });
  afterAll(() => kit.shutdown());
  beforeEach(() => kit.reset());

  describe('a listener added by request A and run inside request B is recorded', () => {
    it('EventEmitter on(): a module-level emitter emitted by B (the listener still runs in record mode)', async () => {
      const before = await kit.violationCount('callback-owner');
      const bus = new EventEmitter();
      const ranAs: Array<string | undefined> = [];
      const requests = await addInAFireInB(
        () => bus.on('price', () => ranAs.push(tryGetRequestContext()?.requestId)),
        () => bus.emit('price', 42),
      );
      expect(ranAs).toEqual([requests.b.requestId]);
      await expectCaught(kit, before, requests);
    });

    it('EventEmitter once(), prependListener() and prependOnceListener()', async () => {
      for (const method of ['once', 'prependListener', 'prependOnceListener'] as const) {
        kit.reset();
        const before = await kit.violationCount('callback-owner');
        const bus = new EventEmitter();
        await expectCaught(kit, before, await addInAFireInB(() => bus[method]('tick', () => undefined), () => bus.emit('tick')));
      }
    });

    it('AbortSignal addEventListener(): a shared controller aborted by B', async () => {
      const before = await kit.violationCount('callback-owner');
      const controller = new AbortController();
      await expectCaught(kit, before, await addInAFireInB(() => controller.signal.addEventListener('abort', () => undefined), () => controller.abort()));
    });

    it('EventTarget with a handleEvent object', async () => {
      const before = await kit.violationCount('callback-owner');
      const target = new EventTarget();
      const seen: string[] = [];
      await expectCaught(kit, before, await addInAFireInB(() => target.addEventListener('ping', { handleEvent: (event) => seen.push(event.type) }), () => target.dispatchEvent(new Event('ping'))));
      expect(seen).toEqual(['ping']);
    });

    it("a stream's data listener: a shared PassThrough written by B", async () => {
      const before = await kit.violationCount('callback-owner');
      const stream = new PassThrough({ objectMode: true });
      const chunks: unknown[] = [];
      const requests = await withRequestContext(A, async (a) => {
        stream.on('data', (chunk) => chunks.push(chunk));
        return a;
      }).then(async (a) =>
        withRequestContext(B, async (b) => {
          stream.write('from-b');
          // The data event may come on a later tick, still inside B.
          await new Promise((resolve) => setImmediate(resolve));
          return { a, b };
        }),
      );
      expect(chunks).toEqual(['from-b']);
      await expectCaught(kit, before, requests);
    });

    it('a nested request is another request: a listener of the outer request run inside the inner one is recorded', async () => {
      const before = await kit.violationCount('callback-owner');
      const bus = new EventEmitter();
      await withRequestContext(A, async () => {
        bus.on('x', () => undefined);
        await withRequestContext(A, () => bus.emit('x'));
      });
      expect(await kit.violationCount('callback-owner')).toBe(before + 1);
    });
  });

  describe('not flagged', () => {
    it('a listener added outside every request (an app-wide bus), run in requests; one added and run in the same request; one run outside requests', async () => {
      const before = await kit.violationCount('callback-owner');
      const bus = new EventEmitter();
      const signalBus = new AbortController();
      const seen: Array<string | undefined> = [];
      bus.on('event', () => seen.push(tryGetRequestContext()?.tenantId));
      signalBus.signal.addEventListener('abort', () => seen.push('aborted'));
      await withRequestContext(A, () => bus.emit('event'));
      await withRequestContext(B, async () => {
        const own = new EventEmitter();
        own.on('done', () => seen.push(`own ${tryGetRequestContext()?.tenantId}`));
        own.emit('done');
        bus.emit('event');
        signalBus.abort();
      });
      const late = await withRequestContext(A, () => {
        const late = new EventEmitter();
        late.on('x', () => seen.push(`late ${tryGetRequestContext()?.tenantId}`));
        return late;
      });
      late.emit('x');
      expect(seen).toEqual(['tenant-a', 'own tenant-b', 'tenant-b', 'aborted', 'late undefined']);
      expect(await kit.violationCount('callback-owner')).toBe(before);
      expectNoCrossRequestLeakage(kit.spans());
    });

    it("connection pools shared by design: fetch's undici pool and a keep-alive http.Agent reused by concurrent requests", async () => {
      const server = createServer((_req, res) => res.end('ok')).listen(0, '127.0.0.1');
      await once(server, 'listening');
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const agent = new Agent({ keepAlive: true, maxSockets: 2 });
      const viaAgent = (): Promise<string> =>
        new Promise((resolve, reject) => {
          request(url, { agent }, (res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += String(chunk)));
            res.on('end', () => resolve(body));
          })
            .on('error', reject)
            .end();
        });
      try {
        const before = await kit.violationCount('callback-owner');
        const turn = (i: number) => withRequestContext({ tenantId: `t${i % 3}`, userId: `u${i}` }, async () => [await (await fetch(url)).text(), await viaAgent()]);
        // Sequential first (each request reuses the connection the one before opened), then concurrent.
        for (let i = 0; i < 3; i++) expect(await turn(i)).toEqual(['ok', 'ok']);
        expect(await Promise.all(Array.from({ length: 8 }, (_, i) => turn(i)))).toHaveLength(8);
        expect(await kit.violationCount('callback-owner')).toBe(before);
        expectNoCrossRequestLeakage(kit.spans());
      } finally {
        agent.destroy();
        server.close();
      }
    });

    it('a listener bound with bindToRequest(fn) runs as its own request wherever it is emitted', async () => {
      const before = await kit.violationCount('callback-owner');
      const bus = new EventEmitter();
      const controller = new AbortController();
      const seen: Array<string | undefined> = [];
      const { a } = await addInAFireInB(
        () => {
          bus.on('x', bindToRequest(() => seen.push(tryGetRequestContext()?.requestId)));
          controller.signal.addEventListener('abort', bindToRequest(() => seen.push(tryGetRequestContext()?.requestId)));
        },
        () => {
          bus.emit('x');
          controller.abort();
        },
      );
      expect(seen).toEqual([a.requestId, a.requestId]);
      expect(await kit.violationCount('callback-owner')).toBe(before);
    });

    it('an emitter or event target bound with bindToRequest(emitter): each listener runs as the request that added it', async () => {
      const before = await kit.violationCount('callback-owner');
      const bus = bindToRequest(new EventEmitter());
      const target = bindToRequest(new EventTarget());
      const seen: string[] = [];
      const listen = (ctx: RequestContext): void => {
        bus.on('x', () => seen.push(`bus ${ctx.tenantId} ran as ${tryGetRequestContext()?.tenantId}`));
        bus.once('x', () => seen.push(`once ${ctx.tenantId} ran as ${tryGetRequestContext()?.tenantId}`));
        target.addEventListener('x', () => seen.push(`target ${ctx.tenantId} ran as ${tryGetRequestContext()?.tenantId}`));
      };
      await withRequestContext(A, listen);
      await withRequestContext(B, (b) => {
        listen(b);
        bus.emit('x');
        target.dispatchEvent(new Event('x'));
      });
      expect(seen.sort()).toEqual(
        ['bus tenant-a ran as tenant-a', 'bus tenant-b ran as tenant-b', 'once tenant-a ran as tenant-a', 'once tenant-b ran as tenant-b', 'target tenant-a ran as tenant-a', 'target tenant-b ran as tenant-b'].sort(),
      );
      expect(await kit.violationCount('callback-owner')).toBe(before);
      expect(bus.listenerCount('x')).toBe(2);
      expect(() => bindToRequest({} as EventEmitter)).toThrow(TypeError);
    });
  });

  describe('emitter and event-target semantics are kept', () => {
    it('removeListener/off with the function given, listeners(), listenerCount(type, fn), and once removed before it fires', async () => {
      await withRequestContext(A, () => {
        const bus = new EventEmitter();
        const calls: string[] = [];
        const on = (): number => calls.push('on');
        const once = (): number => calls.push('once');
        const prependedOnce = (): number => calls.push('prependedOnce');
        bus.on('x', on);
        bus.once('x', once);
        bus.prependOnceListener('x', prependedOnce);
        expect(bus.listeners('x')).toEqual([prependedOnce, on, once]);
        expect(bus.listenerCount('x', once)).toBe(1);
        bus.emit('x');
        bus.emit('x');
        expect(calls).toEqual(['prependedOnce', 'on', 'once', 'on']);
        expect(bus.listeners('x')).toEqual([on]);
        bus.off('x', on);
        const unfired = (): number => calls.push('never');
        bus.once('x', unfired);
        bus.removeListener('x', unfired);
        bus.emit('x');
        expect(bus.listenerCount('x')).toBe(0);
        expect(calls).toHaveLength(4);
        // 'newListener' and 'removeListener' name the function given, as without the audit.
        const named: unknown[] = [];
        bus.on('newListener', (_event, listener) => named.push(listener));
        bus.on('y', on);
        expect(named).toEqual([on]);
      });
    });

    it('a Readable starts flowing on once("data"), and events.once() resolves', async () => {
      await withRequestContext(A, async () => {
        const stream = new PassThrough();
        const first = new Promise((resolve) => stream.once('data', resolve));
        stream.write('chunk');
        expect(String(await first)).toBe('chunk');
        const bus = new EventEmitter();
        const fired = once(bus, 'ready');
        bus.emit('ready', 1);
        expect(await fired).toEqual([1]);
        expect(bus.listenerCount('ready')).toBe(0);
      });
    });

    it('EventTarget: the same listener added twice runs once; removeEventListener(original); once and signal options', async () => {
      await withRequestContext(A, () => {
        const target = new EventTarget();
        let calls = 0;
        const listener = (): void => {
          calls++;
        };
        target.addEventListener('x', listener);
        target.addEventListener('x', listener);
        target.dispatchEvent(new Event('x'));
        expect(calls).toBe(1);
        target.removeEventListener('x', listener);
        target.dispatchEvent(new Event('x'));
        expect(calls).toBe(1);

        target.addEventListener('x', listener, { once: true });
        target.dispatchEvent(new Event('x'));
        target.dispatchEvent(new Event('x'));
        expect(calls).toBe(2);
        // Once fired, the listener can be added again.
        target.addEventListener('x', listener);
        target.dispatchEvent(new Event('x'));
        expect(calls).toBe(3);
        target.removeEventListener('x', listener);

        const stop = new AbortController();
        target.addEventListener('x', listener, { signal: stop.signal });
        stop.abort();
        target.dispatchEvent(new Event('x'));
        expect(calls).toBe(3);
        target.addEventListener('x', listener);
        target.dispatchEvent(new Event('x'));
        expect(calls).toBe(4);
        // Capture is part of the identity: a capture registration is a second one.
        target.addEventListener('x', listener, { capture: true });
        target.dispatchEvent(new Event('x'));
        expect(calls).toBe(6);
      });
    });
  });
});

describe("callback-owner with audit: 'throw'", () => {
  let kit: TestTracing;
  beforeAll(async () => {
    kit = await setupTestTracing({ audit: 'throw' });
  });
  afterAll(() => kit.shutdown());

  it('emit() inside B throws IsolationViolationError before the listener of A runs', async () => {
    const bus = new EventEmitter();
    let ran = false;
    let thrown: unknown;
    await addInAFireInB(
      () => bus.on('x', () => (ran = true)),
      () => {
        try {
          bus.emit('x');
        } catch (error) {
          thrown = error;
        }
      },
    );
    expect(thrown).toBeInstanceOf(IsolationViolationError);
    expect((thrown as IsolationViolationError).check).toBe('callback-owner');
    expect(ran).toBe(false);
  });
});

describe('auditCallbacks option', () => {
  const nativeOn = EventEmitter.prototype.on;
  const nativeOnce = EventEmitter.prototype.once;
  const nativeAdd = EventTarget.prototype.addEventListener;

  it('is off unless asked for (startTracing default; setupTestTracing({ auditCallbacks: false })): nothing is patched, the leak is not counted', async () => {
    const tracing = await startTracing({ serviceName: 'callback-audit-off', exporter: 'none' });
    try {
      expect(EventEmitter.prototype.on).toBe(nativeOn);
      expect(EventTarget.prototype.addEventListener).toBe(nativeAdd);
    } finally {
      await tracing.shutdown();
    }
    const kit = await setupTestTracing({ auditCallbacks: false });
    try {
      const bus = new EventEmitter();
      await addInAFireInB(() => bus.on('x', () => undefined), () => bus.emit('x'));
      expect(await kit.violationCount('callback-owner')).toBe(0);
    } finally {
      await kit.shutdown();
    }
  });

  it('shutdown() puts the prototype methods back exactly; listeners added while it ran still work and can be removed', async () => {
    const kit = await setupTestTracing();
    expect(EventEmitter.prototype.on).not.toBe(nativeOn);
    const bus = new EventEmitter();
    const target = new EventTarget();
    let calls = 0;
    const listener = (): void => {
      calls++;
    };
    await withRequestContext(A, () => {
      bus.once('x', listener);
      target.addEventListener('x', listener);
    });
    await kit.shutdown();
    expect(EventEmitter.prototype.on).toBe(nativeOn);
    expect(EventEmitter.prototype.once).toBe(nativeOnce);
    expect(EventTarget.prototype.addEventListener).toBe(nativeAdd);
    bus.emit('x');
    bus.emit('x');
    target.removeEventListener('x', listener);
    target.dispatchEvent(new Event('x'));
    expect(calls).toBe(1);
    expect(bus.listenerCount('x')).toBe(0);
  });

  it('sampleRate 0 wraps nothing (decided when the listener is added): the leak is not seen, the listener is the one given', async () => {
    const kit = await setupTestTracing({ auditCallbacks: { sampleRate: 0 } });
    try {
      const bus = new EventEmitter();
      const listener = (): void => undefined;
      await addInAFireInB(() => bus.on('x', listener), () => bus.emit('x'));
      expect(bus.rawListeners('x')).toEqual([listener]);
      expect(await kit.violationCount('callback-owner')).toBe(0);
    } finally {
      await kit.shutdown();
    }
  });

  it('rejects a bad value with a TypeError naming the option', async () => {
    await expect(startTracing({ serviceName: 's', exporter: 'none', auditCallbacks: { sampleRate: 2 } })).rejects.toThrow(/'auditCallbacks.sampleRate' must be a number between 0 and 1/);
    await expect(startTracing({ serviceName: 's', exporter: 'none', auditCallbacks: { rate: 1 } as never })).rejects.toThrow(/'auditCallbacks' has an unknown key 'rate'/);
    await expect(startTracing({ serviceName: 's', exporter: 'none', auditCallbacks: 'yes' as never })).rejects.toThrow(TypeError);
  });
});
