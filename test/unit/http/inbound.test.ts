/**
 * httpRequestContext() as a node:http request listener: one request context
 * and SERVER span per request, the response headers that name them, and what
 * happens when the handler fails or identify() refuses the request.
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { connect } from 'node:net';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { getRequestContext, tryGetRequestContext } from 'isotrace';
import { httpRequestContext, type Identity } from 'isotrace/http';
import { expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { listen, parseTraceHeader, rawRequest, waitFor, type TestServer } from '../../helpers/http.js';
import { createRandom, deferred, delay, testSeed, type Deferred } from '../../helpers/random.js';

let kit: TestTracing;
let server: TestServer;
let handlerCalls = 0;
let streamGate: Deferred | undefined;
let hangingRequests: Deferred = deferred();

/** The app's auth: `x-tenant`/`x-user` headers; `x-auth: throw` makes identify throw. */
async function identify(req: IncomingMessage): Promise<Identity | undefined> {
  if (req.headers['x-auth'] === 'throw') throw new Error('auth backend down');
  const tenantId = req.headers['x-tenant'];
  const userId = req.headers['x-user'];
  if (typeof tenantId !== 'string' || typeof userId !== 'string') return undefined;
  return { tenantId, userId, values: { plan: 'pro' } };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}

async function handler(req: IncomingMessage, res: ServerResponse): Promise<void> {
  handlerCalls++;
  const url = new URL(req.url ?? '/', 'http://x');
  switch (url.pathname) {
    case '/whoami': {
      const waitMs = Number(url.searchParams.get('delay') ?? 0);
      const before = getRequestContext();
      if (waitMs > 0) await delay(waitMs);
      await Promise.resolve();
      const after = getRequestContext();
      const child = trace.getTracer('test').startSpan('inner-work');
      child.end();
      sendJson(res, 200, {
        same: before === after,
        requestId: after.requestId,
        correlationId: after.correlationId,
        tenantId: after.tenantId,
        userId: after.userId,
        traceId: after.traceId,
        plan: after.get('plan'),
        activeSpanId: trace.getActiveSpan()?.spanContext().spanId,
      });
      return;
    }
    case '/status':
      sendJson(res, Number(url.searchParams.get('code')), { ok: false });
      return;
    case '/throw-sync':
      throw new Error('handler exploded');
    case '/throw-async':
      await delay(1);
      throw new TypeError('async handler exploded');
    case '/throw-after-headers':
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial;');
      await delay(1);
      throw new RangeError('exploded mid-response');
    case '/write-head':
      // The head written at once, with a header of the same name as one of isotrace's (in another case).
      res.writeHead(201, { 'content-type': 'text/plain', 'X-Correlation-Id': 'from-handler' });
      res.end(getRequestContext().requestId);
      return;
    case '/write-head-after-set':
      res.setHeader('x-app', 'set-first');
      res.writeHead(202, 'Accepted', { 'content-type': 'text/plain' });
      res.end(getRequestContext().requestId);
      return;
    case '/hang':
      hangingRequests.resolve();
      return;
    case '/stream':
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first;');
      void streamGate?.promise.then(() => res.end('last'));
      return;
    default:
      sendJson(res, 404, { error: 'not found' });
  }
}

const identified: ReadonlyArray<readonly [string, string]> = [
  ['x-tenant', 'acme'],
  ['x-user', 'u1'],
];

beforeAll(async () => {
  kit = await setupTestTracing();
  server = await listen(httpRequestContext({ identify }, handler));
});

afterAll(async () => {
  await server?.close();
  await kit?.shutdown();
});

beforeEach(() => {
  kit.reset();
  handlerCalls = 0;
});

function serverSpans(): ReadableSpan[] {
  return kit.spans().filter((span) => span.kind === SpanKind.SERVER);
}

/** Waits for the SERVER span whose request id the response announced. */
function serverSpanFor(requestId: string | undefined): Promise<ReadableSpan> {
  expect(requestId, 'x-request-id response header').toBeTruthy();
  return waitFor(() => serverSpans().find((span) => span.attributes['isotrace.request_id'] === requestId), `SERVER span of request ${requestId}`);
}

describe('httpRequestContext as a node:http listener: the request context', () => {
  it('runs the handler inside a request context with the identity identify() returned', async () => {
    const response = await rawRequest(server.port, { path: '/whoami', headers: identified });
    expect(response.status).toBe(200);
    const body = response.json<Record<string, unknown>>();
    expect(body).toMatchObject({ same: true, tenantId: 'acme', userId: 'u1', plan: 'pro' });
    expect(body.requestId).toBe(response.headers['x-request-id']);
    expect(body.correlationId).toBe(response.headers['x-correlation-id']);
    expect(tryGetRequestContext()).toBeUndefined();
  });

  it('gives every request a fresh request id and trace', async () => {
    const bodies = await Promise.all(
      Array.from({ length: 5 }, async () => (await rawRequest(server.port, { path: '/whoami', headers: identified })).json<{ requestId: string; traceId: string }>()),
    );
    expect(new Set(bodies.map((b) => b.requestId)).size).toBe(5);
    expect(new Set(bodies.map((b) => b.traceId)).size).toBe(5);
  });

  it('keeps concurrent requests with random delays apart (context, spans, response headers)', async () => {
    const random = createRandom(testSeed());
    const requests = Array.from({ length: 120 }, (_, i) => ({ tenant: `tenant-${i % 12}`, user: `user-${i}`, delay: random.int(0, 15) }));
    const responses = await Promise.all(
      requests.map((r) =>
        rawRequest(server.port, {
          path: `/whoami?delay=${r.delay}`,
          headers: [
            ['x-tenant', r.tenant],
            ['x-user', r.user],
          ],
        }),
      ),
    );
    responses.forEach((response, i) => {
      const body = response.json<{ same: boolean; tenantId: string; userId: string; requestId: string }>();
      expect(body, `request ${i} (seed ${random.seed})`).toMatchObject({ same: true, tenantId: requests[i]!.tenant, userId: requests[i]!.user });
      expect(body.requestId).toBe(response.headers['x-request-id']);
    });
    await waitFor(() => serverSpans().length === requests.length, 'all SERVER spans');
    const report = expectNoCrossRequestLeakage(kit.spans());
    expect(report.spans).toBeGreaterThanOrEqual(2 * requests.length);
    for (const span of kit.spans().filter((s) => s.name === 'inner-work')) {
      const parent = serverSpans().find((s) => s.spanContext().spanId === span.parentSpanContext?.spanId);
      expect(parent, 'inner span is a child of its request’s SERVER span').toBeDefined();
      expect(span.attributes['user.id']).toBe(parent!.attributes['user.id']);
    }
  });
});

describe('httpRequestContext as a node:http listener: the SERVER span', () => {
  it('is a SERVER span named after the method, with HTTP and isotrace identity attributes', async () => {
    const response = await rawRequest(server.port, { path: '/whoami?secret=1', headers: identified });
    const span = await serverSpanFor(response.headers['x-request-id']);
    expect(span.kind).toBe(SpanKind.SERVER);
    expect(span.name).toBe('GET');
    expect(span.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/whoami',
      'http.response.status_code': 200,
      'isotrace.tenant_id': 'acme',
      'user.id': 'u1',
      'isotrace.request_id': response.headers['x-request-id'],
      'isotrace.correlation_id': response.headers['x-correlation-id'],
    });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.spanContext().spanId).toBe(response.json<{ activeSpanId: string }>().activeSpanId);
  });

  it('uses the method of the request (POST) as its name', async () => {
    const response = await rawRequest(server.port, { method: 'POST', path: '/whoami', headers: identified, body: '{}' });
    const span = await serverSpanFor(response.headers['x-request-id']);
    expect(span.name).toBe('POST');
    expect(span.attributes['http.request.method']).toBe('POST');
  });

  it('answers with traceresponse 00-<trace id>-<server span id>-<flags> of that span', async () => {
    const response = await rawRequest(server.port, { path: '/whoami', headers: identified });
    const span = await serverSpanFor(response.headers['x-request-id']);
    expect(parseTraceHeader(response.headers['traceresponse'])).toEqual({
      version: '00',
      traceId: span.spanContext().traceId,
      spanId: span.spanContext().spanId,
      flags: '01',
    });
    expect(response.json<{ traceId: string }>().traceId).toBe(span.spanContext().traceId);
  });

  it('adds its headers to a head the handler writes at once, and a header the handler names wins', async () => {
    const response = await rawRequest(server.port, { path: '/write-head', headers: identified });
    expect(response.status).toBe(201);
    expect(response.headers['x-request-id']).toBe(response.body);
    expect(response.headers['x-correlation-id']).toBe('from-handler');
    expect(response.headers['content-type']).toBe('text/plain');
    const span = await serverSpanFor(response.headers['x-request-id']);
    expect(parseTraceHeader(response.headers['traceresponse'])?.spanId).toBe(span.spanContext().spanId);
  });

  it('adds its headers beside those the handler set before writing the head with a reason phrase', async () => {
    const response = await rawRequest(server.port, { path: '/write-head-after-set', headers: identified });
    expect(response.status).toBe(202);
    expect(response.headers).toMatchObject({ 'x-app': 'set-first', 'content-type': 'text/plain', 'x-request-id': response.body, 'x-correlation-id': response.body });
    const span = await serverSpanFor(response.headers['x-request-id']);
    expect(parseTraceHeader(response.headers['traceresponse'])?.spanId).toBe(span.spanContext().spanId);
  });

  it('ends when the response has finished, not when the handler returns', async () => {
    streamGate = deferred();
    const socket = connect(server.port, '127.0.0.1');
    socket.write('GET /stream HTTP/1.1\r\nHost: x\r\nx-tenant: acme\r\nx-user: u1\r\nConnection: close\r\n\r\n');
    const [firstChunk] = (await once(socket, 'data')) as [Buffer];
    expect(firstChunk.toString()).toContain('first;');
    // The handler returned long ago; the response is still open.
    expect(serverSpans()).toHaveLength(0);
    streamGate.resolve();
    socket.resume();
    await once(socket, 'close');
    const span = await waitFor(() => serverSpans()[0], 'SERVER span after the response finished');
    expect(span.attributes['http.response.status_code']).toBe(200);
  });

  it.each([500, 503])('marks the span ERROR when the status is %i', async (code) => {
    const response = await rawRequest(server.port, { path: `/status?code=${code}`, headers: identified });
    expect(response.status).toBe(code);
    const span = await serverSpanFor(response.headers['x-request-id']);
    expect(span.attributes['http.response.status_code']).toBe(code);
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    // No exception: HTTP semantic conventions make the status code the error type.
    expect(span.attributes['error.type']).toBe(String(code));
    expect(span.events.filter((event) => event.name === 'exception')).toEqual([]);
  });

  it.each([404, 499])('leaves the span status unset for a %i (a client error)', async (code) => {
    const response = await rawRequest(server.port, { path: `/status?code=${code}`, headers: identified });
    const span = await serverSpanFor(response.headers['x-request-id']);
    expect(span.attributes['http.response.status_code']).toBe(code);
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
  });
});

describe('httpRequestContext as a node:http listener: failures', () => {
  it.each([
    ['synchronously', '/throw-sync', 'handler exploded', 'Error'],
    ['asynchronously', '/throw-async', 'async handler exploded', 'TypeError'],
  ])('answers 500 when the handler throws %s, and records the error on the span', async (_how, path, message, type) => {
    const response = await rawRequest(server.port, { path, headers: identified });
    expect(response.status).toBe(500);
    expect(response.body).not.toContain(message);
    const span = await serverSpanFor(response.headers['x-request-id']);
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['http.response.status_code']).toBe(500);
    expect(span.attributes['error.type']).toBe(type);
    const exceptions = span.events.filter((event) => event.name === 'exception');
    expect(exceptions.map((event) => event.attributes?.['exception.message'])).toEqual([message]);
    // The server keeps serving.
    expect((await rawRequest(server.port, { path: '/whoami', headers: identified })).status).toBe(200);
  });

  it('records the sent status, the exception and its error.type when the handler throws after the headers went out, and cuts the connection', async () => {
    const socket = connect(server.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {}); // a reset is one way the cut may arrive
    socket.write('GET /throw-after-headers HTTP/1.1\r\nHost: x\r\nx-tenant: acme\r\nx-user: u1\r\nConnection: close\r\n\r\n');
    await once(socket, 'close');
    const received = Buffer.concat(chunks).toString('latin1');
    expect(received).toMatch(/^HTTP\/1\.1 200/);
    // Chunked and never terminated: the client can tell the body is incomplete.
    expect(received).not.toMatch(/\r\n0\r\n\r\n$/);
    const requestId = /\r\nx-request-id: ([^\r]+)/i.exec(received)?.[1];
    const span = await serverSpanFor(requestId);
    expect(span.attributes['http.response.status_code']).toBe(200);
    expect(span.attributes['error.type']).toBe('RangeError');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    const exceptions = span.events.filter((event) => event.name === 'exception');
    expect(exceptions.map((event) => event.attributes?.['exception.message'])).toEqual(['exploded mid-response']);
  });

  it('records a connection the client closed before any response as error.type connection_closed, without a status code', async () => {
    hangingRequests = deferred();
    const socket = connect(server.port, '127.0.0.1');
    socket.write('GET /hang HTTP/1.1\r\nHost: x\r\nx-tenant: acme\r\nx-user: u1\r\n\r\n');
    await hangingRequests.promise;
    socket.destroy();
    const span = await waitFor(() => serverSpans().find((s) => s.attributes['url.path'] === '/hang'), 'SERVER span of the abandoned request');
    expect(span.attributes['error.type']).toBe('connection_closed');
    expect(span.attributes['http.response.status_code']).toBeUndefined();
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });

  it.each([
    ['returns undefined', [['x-tenant', 'acme']] as Array<[string, string]>],
    ['throws', [...identified, ['x-auth', 'throw']] as Array<[string, string]>],
  ])('answers 401 JSON without a request context or span when identify() %s', async (_what, headers) => {
    const refused = await rawRequest(server.port, { path: '/whoami', headers });
    expect(refused.status).toBe(401);
    expect(refused.headers['content-type']).toMatch(/application\/json/);
    expect(refused.json()).toEqual({ error: 'unauthenticated' });
    expect(refused.headers['x-request-id']).toBeUndefined();
    expect(refused.headers['traceresponse']).toBeUndefined();
    expect(refused.body).not.toContain('auth backend down');
    expect(handlerCalls).toBe(0);
    // A request that passes, sent after the refused one: once its span is in, the refused one would be too.
    const accepted = await rawRequest(server.port, { path: '/whoami', headers: identified });
    await serverSpanFor(accepted.headers['x-request-id']);
    expect(serverSpans()).toHaveLength(1);
    expect(handlerCalls).toBe(1);
  });
});

describe('httpRequestContext options', () => {
  it('names the span with options.name (a string or a function of the request)', async () => {
    const fixed = await listen(httpRequestContext({ identify, name: 'api-call' }, (_req, res) => res.end('ok')));
    const computed = await listen(httpRequestContext({ identify, name: (req) => `${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}` }, (_req, res) => res.end('ok')));
    try {
      const a = await rawRequest(fixed.port, { path: '/x', headers: identified });
      const b = await rawRequest(computed.port, { method: 'DELETE', path: '/items/7?force=1', headers: identified });
      expect((await serverSpanFor(a.headers['x-request-id'])).name).toBe('api-call');
      expect((await serverSpanFor(b.headers['x-request-id'])).name).toBe('DELETE /items/7');
    } finally {
      await fixed.close();
      await computed.close();
    }
  });

  it('lets onUnidentified answer a refused request, with the error identify() threw', async () => {
    const seen: unknown[] = [];
    const custom = await listen(
      httpRequestContext(
        {
          identify,
          onUnidentified: (_req, res, error) => {
            seen.push(error);
            res.statusCode = 403;
            res.setHeader('www-authenticate', 'Bearer');
            res.end('go away');
          },
        },
        (_req, res) => {
          handlerCalls++;
          res.end('ok');
        },
      ),
    );
    try {
      const missing = await rawRequest(custom.port, { path: '/' });
      const threw = await rawRequest(custom.port, { path: '/', headers: [...identified, ['x-auth', 'throw']] });
      expect([missing.status, missing.body, missing.headers['www-authenticate']]).toEqual([403, 'go away', 'Bearer']);
      expect(threw.status).toBe(403);
      expect(seen).toHaveLength(2);
      expect(seen[0]).toBeUndefined();
      expect((seen[1] as Error).message).toBe('auth backend down');
      expect(handlerCalls).toBe(0);
    } finally {
      await custom.close();
    }
  });

  it('answers 500 and keeps serving when onUnidentified itself throws', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    const custom = await listen(
      httpRequestContext(
        {
          identify,
          onUnidentified: () => {
            throw new Error('refusal page template missing');
          },
        },
        (_req, res) => res.end('ok'),
      ),
    );
    try {
      const refused = await rawRequest(custom.port, { path: '/' });
      expect(refused.status).toBe(500);
      expect(refused.body).not.toContain('template missing');
      expect((await rawRequest(custom.port, { path: '/', headers: identified })).body).toBe('ok');
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await custom.close();
    }
  });

  it('throws TypeError naming the option for bad arguments', () => {
    expect(() => httpRequestContext({} as never)).toThrow(TypeError);
    expect(() => httpRequestContext({} as never)).toThrow(/identify/);
    expect(() => httpRequestContext({ identify, trustInbound: true as never })).toThrow(/trustInbound/);
    expect(() => httpRequestContext({ identify }, 'nope' as never)).toThrow(/handler/);
  });
});
