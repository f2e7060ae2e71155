// serverSentEvents() inside httpRequestContext(): a real HTTP server on 127.0.0.1 port 0 and a real
// client (fetch) reading `text/event-stream` as it arrives: `event: progress` for each event of the
// request, `event: result` last; concurrent users each get only their own events.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanStatusCode } from '@opentelemetry/api';
import { emitProgress, RequestContextMissingError, type RequestContext } from 'isotrace';
import { httpRequestContext, serverSentEvents, type Identity } from 'isotrace/http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { useTestTracing } from 'isotrace/testing';
import { listen, type TestServer } from '../../helpers/http.js';
import { createRandom, deferred, delay, testSeed, type Deferred } from '../../helpers/random.js';
import { parseServerSentEvents, type ServerSentEvent } from './events-test-helpers.js';

const kit = useTestTracing();
const USERS = 40;

// Handed between the server's handler and the test (one test at a time uses each).
let firstSeen: Deferred | undefined;
let disconnected: Deferred<{ aborted: boolean; emitted: boolean }> | undefined;

function identify(req: IncomingMessage): Identity | undefined {
  const user = req.headers['x-user'];
  return typeof user === 'string' ? { tenantId: `tenant-of-${user}`, userId: user } : undefined;
}

async function steps(ctx: RequestContext, url: URL): Promise<unknown> {
  const delays = (url.searchParams.get('delays') ?? '').split(',').filter(Boolean).map(Number);
  for (const [step, ms] of delays.entries()) {
    await delay(ms);
    emitProgress({ step, user: ctx.userId, requestId: ctx.requestId });
  }
  return { user: ctx.userId, requestId: ctx.requestId, steps: delays.length };
}

async function handler(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  switch (url.pathname) {
    case '/steps':
      return serverSentEvents(res, (ctx) => steps(ctx, url));
    case '/wait-for-client':
      return serverSentEvents(res, async () => {
        emitProgress({ type: 'first' });
        // The client has read the first event before the work goes on: the stream is not buffered until the end.
        await firstSeen!.promise;
        return { finished: true };
      });
    case '/fails':
      return serverSentEvents(res, () => {
        emitProgress({ type: 'started' });
        throw new Error('secret detail');
      });
    case '/exposed':
      return serverSentEvents(res, () => Promise.reject(new RangeError('bad range')), { exposeError: (error) => (error instanceof RangeError ? error.message : undefined) });
    case '/abandoned':
      return serverSentEvents(res, async (_ctx, signal) => {
        emitProgress({ type: 'first' });
        if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        disconnected!.resolve({ aborted: signal.aborted, emitted: emitProgress({ type: 'after-close' }) });
        return 'never read';
      });
    default:
      res.statusCode = 404;
      res.end();
  }
}

let server: TestServer;

beforeAll(async () => {
  server = await listen(httpRequestContext({ identify }, handler));
});

afterAll(async () => {
  await server?.close();
});

/** Reads a server-sent-events response as it arrives, calling `onEvent` for each event; resolves with all of them. */
async function readEvents(path: string, user: string, onEvent?: (event: ServerSentEvent) => void, signal?: AbortSignal): Promise<{ contentType: string | null; events: ServerSentEvent[] }> {
  const response = await fetch(`${server.origin}${path}`, { headers: { 'x-user': user }, signal });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: ServerSentEvent[] = [];
  let buffered = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += value;
    const complete = buffered.lastIndexOf('\n\n');
    if (complete === -1) continue;
    for (const event of parseServerSentEvents(buffered.slice(0, complete + 2))) {
      events.push(event);
      onEvent?.(event);
    }
    buffered = buffered.slice(complete + 2);
  }
  return { contentType: response.headers.get('content-type'), events };
}

describe('serverSentEvents()', () => {
  it(`${USERS} concurrent users each read only their own progress events, then their result`, async () => {
    const random = createRandom(testSeed());
    const plans = Array.from({ length: USERS }, (_, u) => ({ user: `user-${u}`, delays: Array.from({ length: random.int(1, 5) }, () => random.int(0, 8)) }));
    const outcomes = await Promise.all(plans.map(async (plan) => ({ plan, ...(await readEvents(`/steps?delays=${plan.delays.join(',')}`, plan.user)) })));

    for (const { plan, contentType, events } of outcomes) {
      const context = `${plan.user} (seed ${random.seed})`;
      expect(contentType, context).toBe('text/event-stream; charset=utf-8');
      const result = events.at(-1)!;
      expect(result.event, context).toBe('result');
      const { requestId } = result.data as { requestId: string };
      expect(result.data, context).toEqual({ user: plan.user, requestId, steps: plan.delays.length });
      expect(events.slice(0, -1), context).toEqual(plan.delays.map((_, step) => ({ event: 'progress', data: { step, user: plan.user, requestId } })));
    }
    const spans = kit.spans().filter((span) => span.attributes['isotrace.request_span'] === true);
    expect(spans).toHaveLength(USERS);
    for (const span of spans) expect(span.attributes['isotrace.events.delivered']).toBeGreaterThan(0);
    expect(await kit.violationCount('event-owner')).toBe(0);
  });

  it('sends each event as it is emitted, not when the work ends', async () => {
    firstSeen = deferred();
    const { events } = await readEvents('/wait-for-client', 'alice', (event) => {
      if (event.event === 'progress') firstSeen!.resolve();
    });
    expect(events).toEqual([
      { event: 'progress', data: { type: 'first' } },
      { event: 'result', data: { finished: true } },
    ]);
  });

  it('a failing run sends `event: error` without its details and fails the request span', async () => {
    const { events } = await readEvents('/fails', 'alice');
    expect(events).toEqual([
      { event: 'progress', data: { type: 'started' } },
      { event: 'error', data: { error: 'internal error' } },
    ]);
    const span = kit.spans().find((s) => s.attributes['isotrace.request_span'] === true);
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.events.find((e) => e.name === 'exception')?.attributes?.['exception.message']).toBe('secret detail');
  });

  it('exposeError chooses the text of the error event', async () => {
    const { events } = await readEvents('/exposed', 'alice');
    expect(events).toEqual([{ event: 'error', data: { error: 'bad range' } }]);
  });

  it('when the client goes away the run’s signal aborts and later events are undelivered', async () => {
    disconnected = deferred();
    const client = new AbortController();
    await readEvents('/abandoned', 'alice', () => client.abort(), client.signal).catch((error: unknown) => {
      if ((error as Error).name !== 'AbortError') throw error;
    });
    expect(await disconnected.promise).toEqual({ aborted: true, emitted: false });
  });

  it('rejects with RequestContextMissingError outside a request', async () => {
    const res = { write: () => true } as unknown as ServerResponse;
    await expect(serverSentEvents(res, () => 1)).rejects.toThrow(RequestContextMissingError);
    await expect(serverSentEvents(res, 'run' as never)).rejects.toThrow(TypeError);
  });
});
