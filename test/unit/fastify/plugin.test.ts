/**
 * The Fastify plugin in a real Fastify 5 app: each request runs in its own
 * request context from the plugin's onRequest hook through the handler (a
 * JSON body parsed in between included), under a SERVER span named after
 * Fastify's route with its prefix; errors reach Fastify's error handler and
 * are recorded on the span; identify() refusals never reach a route; inbound
 * trace context is continued and baggage kept only from trusted peers.
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { once } from 'node:events';
import { connect } from 'node:net';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { getRequestContext, getSharedState, tryGetRequestContext } from 'isotrace';
import { isotracePlugin, type FastifyRequestContextOptions } from 'isotrace/fastify';
import { expectNoCrossRequestLeakage } from 'isotrace/testing';
import { parseTraceHeader, rawRequest, waitFor, type RawResponse } from '../../helpers/http.js';
import { delay } from '../../helpers/random.js';
import { useTestTracing } from '../../helpers/tracing.js';
import { auth, identify, listenFastify, postAfterContinue, type ListeningApp } from './fastify-test-helpers.js';

const kit = useTestTracing();
let server: ListeningApp;
let routeCalls = 0;
const seenByHooks: Array<{ hook: string; requestId: string | undefined }> = [];
const seenByErrorHandler: Array<{ message: string; requestId: string | undefined }> = [];

/** What a route reports about the context it runs in. */
function observed(request: FastifyRequest): Record<string, unknown> {
  const ctx = getRequestContext();
  return {
    same: ctx === request.isotrace,
    requestId: ctx.requestId,
    tenantId: ctx.tenantId,
    userId: ctx.userId,
    stage: ctx.get('stage'),
    sharedStateScope: getSharedState().scope,
    baggage: Object.fromEntries((propagation.getBaggage(context.active())?.getAllEntries() ?? []).map(([key, entry]) => [key, entry.value])),
  };
}

async function buildApp(options: Partial<FastifyRequestContextOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(isotracePlugin, { identify, ...options });
  app.addHook('preHandler', async (request) => {
    seenByHooks.push({ hook: 'preHandler', requestId: tryGetRequestContext()?.requestId });
    request.isotrace.set('stage', 'preHandler');
  });
  app.get('/whoami', async (request) => {
    routeCalls++;
    const before = getRequestContext();
    await delay(1);
    return { ...observed(request), stillSame: before === getRequestContext() };
  });
  await app.register(
    async (api) => {
      api.get<{ Params: { id: string } }>('/items/:id', async (request) => ({ id: request.params.id, ...observed(request) }));
      api.post<{ Body: { note: string } }>('/notes', async (request) => ({ note: request.body.note, ...observed(request) }));
      api.get('/boom', async () => {
        routeCalls++;
        throw new TypeError('route exploded');
      });
      // A callback-style hook that resumes from outside every request, as a pooled driver's callback does.
      api.get('/pooled', { preHandler: (_request, _reply, done) => void setImmediate(() => context.with(ROOT_CONTEXT, done)) }, async (request) => observed(request));
      api.get('/unavailable', async (_request, reply) => reply.code(503).send({ retry: true }));
    },
    { prefix: '/api' },
  );
  await app.register(async (scoped) => {
    scoped.setErrorHandler(async (error: Error, request, reply) => {
      seenByErrorHandler.push({ message: error.message, requestId: tryGetRequestContext()?.requestId });
      if (request.url.startsWith('/own/bad-input')) return reply.code(400).send({ handledBy: 'app', message: error.message });
      return reply.code(500).send({ handledBy: 'app', message: error.message });
    });
    scoped.get('/own/boom', async () => {
      throw new RangeError('own handler exploded');
    });
    scoped.get('/own/bad-input', async () => {
      throw new Error('bad input');
    });
  });
  return app;
}

beforeAll(async () => {
  server = await listenFastify(await buildApp());
});

afterAll(async () => {
  await server?.close();
});

beforeEach(() => {
  routeCalls = 0;
  seenByHooks.length = 0;
  seenByErrorHandler.length = 0;
});

function serverSpanFor(response: RawResponse): Promise<ReadableSpan> {
  const requestId = response.headers['x-request-id'];
  expect(requestId, 'x-request-id response header').toBeTruthy();
  return waitFor(
    () => kit.spans().find((span) => span.kind === SpanKind.SERVER && span.attributes['isotrace.request_id'] === requestId),
    `SERVER span of request ${requestId}`,
  );
}

describe('isotracePlugin: the request context', () => {
  it('runs hooks after the plugin and the handler inside the request context, across awaits', async () => {
    const response = await rawRequest(server.port, { path: '/whoami', headers: auth('acme', 'alice') });
    expect(response.status).toBe(200);
    expect(response.json()).toMatchObject({
      same: true,
      stillSame: true,
      requestId: response.headers['x-request-id'],
      tenantId: 'acme',
      userId: 'alice',
      stage: 'preHandler',
      sharedStateScope: { tenantId: 'acme', userId: 'alice' },
    });
    expect(seenByHooks).toEqual([{ hook: 'preHandler', requestId: response.headers['x-request-id'] }]);
    expect(response.headers['x-correlation-id']).toBe(response.headers['x-request-id']);
  });

  it('runs every lifecycle stage after the plugin’s onRequest hook inside the request context', async () => {
    const app = Fastify();
    const seen: Record<string, string | undefined> = {};
    const record = (stage: string): void => {
      seen[stage] = tryGetRequestContext()?.requestId;
    };
    app.addHook('onRequest', async () => record('onRequest before the plugin'));
    await app.register(isotracePlugin, { identify });
    for (const stage of ['onRequest', 'preParsing', 'preValidation', 'preHandler', 'onResponse'] as const) app.addHook(stage, async () => record(stage));
    app.addHook('preSerialization', async (_request, _reply, payload) => {
      record('preSerialization');
      return payload;
    });
    app.addHook('onSend', async () => record('onSend'));
    app.setErrorHandler(async (error: Error, _request, reply) => {
      record('errorHandler');
      return reply.code(500).send({ error: error.message });
    });
    app.post('/stages', async (request) => {
      record('handler');
      if ((request.body as { fail?: boolean }).fail) throw new Error('stage failed');
      return { ok: true };
    });
    const own = await listenFastify(app);
    try {
      const post = (body: string): Promise<RawResponse> => rawRequest(own.port, { method: 'POST', path: '/stages', headers: [...auth('acme', 'alice'), ['content-type', 'application/json']], body });
      const ok = await post('{}');
      // onResponse runs when the response finished, as the span ends: wait for the span, then read what it saw.
      await serverSpanFor(ok);
      await waitFor(() => 'onResponse' in seen, 'the onResponse hook');
      const id = ok.headers['x-request-id'];
      expect(seen).toEqual({
        'onRequest before the plugin': undefined,
        onRequest: id,
        preParsing: id,
        preValidation: id,
        preHandler: id,
        handler: id,
        preSerialization: id,
        onSend: id,
        onResponse: id,
      });
      const failed = await post('{"fail":true}');
      expect(failed.status).toBe(500);
      expect(seen.errorHandler).toBe(failed.headers['x-request-id']);
    } finally {
      await own.close();
    }
  });

  it('keeps the context after Fastify parsed a JSON body (the body resumes the request from the socket)', async () => {
    const body = JSON.stringify({ note: 'hello' });
    const response = await rawRequest(server.port, { method: 'POST', path: '/api/notes', headers: [...auth('acme', 'bob'), ['content-type', 'application/json']], body });
    expect(response.status).toBe(200);
    expect(response.json()).toMatchObject({ note: 'hello', same: true, tenantId: 'acme', userId: 'bob', stage: 'preHandler', requestId: response.headers['x-request-id'] });
    const span = await serverSpanFor(response);
    expect(span.name).toBe('POST /api/notes');
  });

  it('keeps the context when the body arrives after the request began (Expect: 100-continue)', async () => {
    const response = await postAfterContinue(server.port, '/api/notes', [...auth('acme', 'carol'), ['content-type', 'application/json']], JSON.stringify({ note: 'later' }));
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ note: 'later', same: true, tenantId: 'acme', userId: 'carol', stage: 'preHandler' });
  });

  it('runs the handler in its own request’s context even when a hook before it resumed outside every request', async () => {
    const response = await rawRequest(server.port, { path: '/api/pooled', headers: auth('globex', 'dana') });
    expect(response.status).toBe(200);
    expect(response.json()).toMatchObject({ same: true, tenantId: 'globex', userId: 'dana', requestId: response.headers['x-request-id'] });
  });

  it('names the SERVER span after the route with its prefix, with http.route, the full url.path and traceresponse', async () => {
    const response = await rawRequest(server.port, { path: '/api/items/7?expand=1', headers: auth('acme', 'alice') });
    expect(response.json()).toMatchObject({ id: '7', same: true, tenantId: 'acme' });
    const span = await serverSpanFor(response);
    expect(span.name).toBe('GET /api/items/:id');
    expect(span.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.route': '/api/items/:id',
      'url.path': '/api/items/7',
      'url.scheme': 'http',
      'server.address': '127.0.0.1',
      'server.port': server.port,
      'http.response.status_code': 200,
      'isotrace.tenant_id': 'acme',
      'user.id': 'alice',
    });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    const traceResponse = parseTraceHeader(response.headers.traceresponse);
    expect(traceResponse).toMatchObject({ traceId: span.spanContext().traceId, spanId: span.spanContext().spanId });
    expectNoCrossRequestLeakage(kit.spans());
  });

  it('records Fastify’s 404 for an unknown path by method alone, without http.route or ERROR', async () => {
    const response = await rawRequest(server.port, { path: '/api/nowhere', headers: auth('acme', 'alice') });
    expect(response.status).toBe(404);
    const span = await serverSpanFor(response);
    expect(span.name).toBe('GET');
    expect(span.attributes['http.route']).toBeUndefined();
    expect(span.attributes).toMatchObject({ 'url.path': '/api/nowhere', 'http.response.status_code': 404 });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('takes the span name from options.name when given', async () => {
    const own = await listenFastify(await buildApp({ name: (request) => `items ${request.method}` }));
    try {
      const response = await rawRequest(own.port, { path: '/api/items/1', headers: auth('acme', 'alice') });
      const span = await serverSpanFor(response);
      expect(span.name).toBe('items GET');
      expect(span.attributes['http.route']).toBe('/api/items/:id');
    } finally {
      await own.close();
    }
  });
});

describe('isotracePlugin: errors', () => {
  it('lets Fastify’s default error handler answer a throwing handler with 500, and records the exception on the span', async () => {
    const response = await rawRequest(server.port, { path: '/api/boom', headers: auth('acme', 'alice') });
    expect(response.status).toBe(500);
    expect(response.json()).toMatchObject({ statusCode: 500, message: 'route exploded' });
    const span = await serverSpanFor(response);
    expect(span.attributes).toMatchObject({ 'http.response.status_code': 500, 'error.type': 'TypeError', 'http.route': '/api/boom' });
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    const exception = span.events.find((event) => event.name === 'exception');
    expect(exception?.attributes).toMatchObject({ 'exception.type': 'TypeError', 'exception.message': 'route exploded' });
  });

  it('runs the app’s own error handler inside the request context; its 500 records the exception', async () => {
    const response = await rawRequest(server.port, { path: '/own/boom', headers: auth('acme', 'alice') });
    expect(response.status).toBe(500);
    expect(response.json()).toEqual({ handledBy: 'app', message: 'own handler exploded' });
    expect(seenByErrorHandler).toEqual([{ message: 'own handler exploded', requestId: response.headers['x-request-id'] }]);
    const span = await serverSpanFor(response);
    expect(span.attributes).toMatchObject({ 'http.response.status_code': 500, 'error.type': 'RangeError' });
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('does not mark the span ERROR when the app’s error handler answers a thrown error with a 4xx', async () => {
    const response = await rawRequest(server.port, { path: '/own/bad-input', headers: auth('acme', 'alice') });
    expect(response.status).toBe(400);
    const span = await serverSpanFor(response);
    expect(span.attributes['http.response.status_code']).toBe(400);
    expect(span.attributes['error.type']).toBeUndefined();
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('records a 5xx a handler answers itself as error.type with the status code', async () => {
    const response = await rawRequest(server.port, { path: '/api/unavailable', headers: auth('acme', 'alice') });
    expect(response.status).toBe(503);
    const span = await serverSpanFor(response);
    expect(span.attributes).toMatchObject({ 'http.response.status_code': 503, 'error.type': '503' });
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });
});

describe('isotracePlugin: clients that leave', () => {
  it('ends the span as connection_closed when the client left while identify() was still deciding', async () => {
    const app = Fastify();
    await app.register(isotracePlugin, {
      identify: async (request) => {
        // Decides only after the client is gone: the response's 'close' has already fired.
        await once(request.raw.socket, 'close');
        return identify(request);
      },
    });
    app.get('/slow', async () => ({ ok: true }));
    const own = await listenFastify(app);
    try {
      const socket = connect(own.port, '127.0.0.1');
      await once(socket, 'connect');
      socket.end(`GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer acme:alice\r\n\r\n`);
      socket.destroy();
      const span = await waitFor(() => kit.spans().find((s) => s.kind === SpanKind.SERVER), 'the SERVER span of the abandoned request');
      expect(span.attributes).toMatchObject({ 'error.type': 'connection_closed', 'isotrace.tenant_id': 'acme' });
      expect(span.attributes['http.response.status_code']).toBeUndefined();
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
    } finally {
      await own.close();
    }
  });
});

describe('isotracePlugin: identity', () => {
  it.each([
    ['returns nothing', [['authorization', 'Basic nope']] as Array<[string, string]>],
    ['throws', [['x-auth', 'throw']] as Array<[string, string]>],
  ])('answers 401 without running the route or creating a span when identify() %s', async (_what, headers) => {
    const refused = await rawRequest(server.port, { path: '/whoami', headers });
    expect(refused.status).toBe(401);
    expect(refused.json()).toEqual({ error: 'unauthenticated' });
    expect(refused.headers['x-request-id']).toBeUndefined();
    expect(routeCalls).toBe(0);
    expect(seenByHooks).toEqual([]);
    // A later accepted request proves spans are exported, so "no span" above is not just "not yet".
    const accepted = await rawRequest(server.port, { path: '/whoami', headers: auth('acme', 'alice') });
    await serverSpanFor(accepted);
    expect(kit.spans().filter((span) => span.kind === SpanKind.SERVER)).toHaveLength(1);
  });

  it('lets onUnidentified answer a refusal, and answers 401 when it leaves the reply unsent', async () => {
    const errors: unknown[] = [];
    const answering = await listenFastify(
      await buildApp({
        onUnidentified: (_request, reply, error) => {
          errors.push(error);
          void reply.code(403).send({ error: 'forbidden here' });
        },
      }),
    );
    const silent = await listenFastify(await buildApp({ onUnidentified: async () => {} }));
    try {
      const forbidden = await rawRequest(answering.port, { path: '/whoami', headers: [['x-auth', 'throw']] });
      expect(forbidden.status).toBe(403);
      expect(forbidden.json()).toEqual({ error: 'forbidden here' });
      expect((errors[0] as Error).message).toBe('auth backend down');
      const failClosed = await rawRequest(silent.port, { path: '/whoami' });
      expect(failClosed.status).toBe(401);
      expect(routeCalls).toBe(0);
    } finally {
      await answering.close();
      await silent.close();
    }
  });

  it('takes identity from identify() only: forged identity baggage from an untrusted peer changes nothing', async () => {
    const response = await rawRequest(server.port, {
      path: '/whoami',
      headers: [...auth('acme', 'alice'), ['baggage', 'isotrace.tenant_id=evil,isotrace.user_id=mallory,feature=beta']],
    });
    const seen = response.json<{ tenantId: string; userId: string; baggage: Record<string, string> }>();
    expect(seen).toMatchObject({ tenantId: 'acme', userId: 'alice' });
    expect(seen.baggage).toMatchObject({ 'isotrace.tenant_id': 'acme', 'isotrace.user_id': 'alice' });
    expect(seen.baggage.feature).toBeUndefined();
  });

  it('answers 500 and never runs the route when no request context can be made (identify() gave no valid identity)', async () => {
    const own = await listenFastify(await buildApp({ identify: () => ({ tenantId: '', userId: 'alice' }) }));
    try {
      const response = await rawRequest(own.port, { path: '/whoami' });
      expect(response.status).toBe(500);
      expect(response.json()).toEqual({ error: 'internal error' });
      expect(routeCalls).toBe(0);
      expect(seenByHooks).toEqual([]);
    } finally {
      await own.close();
    }
  });

  it('rejects bad options at registration with a TypeError naming the option', async () => {
    await expect(Fastify().register(isotracePlugin, {} as FastifyRequestContextOptions)).rejects.toThrow(/option 'identify'/);
    await expect(Fastify().register(isotracePlugin, { identify: 'header' as never })).rejects.toBeInstanceOf(TypeError);
    await expect(Fastify().register(isotracePlugin, { identify, trustInbound: true as never })).rejects.toThrow(/option 'trustInbound'/);
    await expect(Fastify().register(isotracePlugin, { identify, name: 42 as never })).rejects.toThrow(/option 'name'/);
    await expect(Fastify().register(isotracePlugin, { identify, onUnidentified: 'x' as never })).rejects.toThrow(/option 'onUnidentified'/);
  });
});

describe('isotracePlugin: inbound trace context', () => {
  const inboundTraceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const inboundSpanId = '00f067aa0ba902b7';
  const traceparent: [string, string] = ['traceparent', `00-${inboundTraceId}-${inboundSpanId}-01`];

  it('continues a valid inbound traceparent from any peer, but keeps its baggage only when trustInbound() says so', async () => {
    const trusting = await listenFastify(await buildApp({ trustInbound: (request) => request.headers['x-mesh-peer'] === 'verified' }));
    try {
      const baggage: [string, string] = ['baggage', 'feature=beta,isotrace.correlation_id=corr-123'];
      const untrusted = await rawRequest(trusting.port, { path: '/whoami', headers: [...auth('acme', 'alice'), traceparent, baggage] });
      const trusted = await rawRequest(trusting.port, { path: '/whoami', headers: [...auth('acme', 'alice'), traceparent, baggage, ['x-mesh-peer', 'verified']] });
      expect(untrusted.json<{ baggage: Record<string, string> }>().baggage.feature).toBeUndefined();
      expect(trusted.json<{ baggage: Record<string, string> }>().baggage.feature).toBe('beta');
      // A valid correlation id is taken even from an untrusted peer's baggage (it names, never authorizes).
      expect(untrusted.headers['x-correlation-id']).toBe('corr-123');
      for (const response of [untrusted, trusted]) {
        const span = await serverSpanFor(response);
        expect(span.spanContext().traceId).toBe(inboundTraceId);
        expect(span.parentSpanContext?.spanId).toBe(inboundSpanId);
        expect(parseTraceHeader(response.headers.traceresponse)?.traceId).toBe(inboundTraceId);
      }
    } finally {
      await trusting.close();
    }
  });

  it('starts a new trace for an invalid traceparent', async () => {
    const response = await rawRequest(server.port, { path: '/whoami', headers: [...auth('acme', 'alice'), ['traceparent', `00-${'0'.repeat(32)}-${inboundSpanId}-01`]] });
    const span = await serverSpanFor(response);
    expect(span.spanContext().traceId).not.toBe('0'.repeat(32));
    expect(span.parentSpanContext).toBeUndefined();
  });

  it('parents spans made in the handler under the SERVER span', async () => {
    const app = Fastify();
    await app.register(isotracePlugin, { identify });
    app.get('/work', async () => {
      trace.getTracer('test').startSpan('inner-work').end();
      return { ok: true };
    });
    const own = await listenFastify(app);
    try {
      const response = await rawRequest(own.port, { path: '/work', headers: auth('acme', 'alice') });
      const span = await serverSpanFor(response);
      const inner = kit.spans().find((s) => s.name === 'inner-work');
      expect(inner?.parentSpanContext?.spanId).toBe(span.spanContext().spanId);
      expect(inner?.attributes['isotrace.tenant_id']).toBe('acme');
    } finally {
      await own.close();
    }
  });
});
