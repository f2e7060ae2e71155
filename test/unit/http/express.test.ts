/**
 * httpRequestContext() as Express middleware in a real Express 5 app: routes
 * after `app.use(httpRequestContext(...))` run in the request's context, and
 * errors still reach Express's own error handler.
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import type { IncomingMessage } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { getRequestContext, tryGetRequestContext } from 'isotrace';
import { httpRequestContext, type Identity } from 'isotrace/http';
import { expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { listen, rawRequest, waitFor, type TestServer } from '../../helpers/http.js';
import { createRandom, delay, testSeed } from '../../helpers/random.js';

let kit: TestTracing;
let server: TestServer;
let routeCalls = 0;
const errorsSeen: Array<{ message: string; requestId: string | undefined }> = [];

function identify(req: IncomingMessage): Identity | undefined {
  const match = /^Bearer ([\w-]+):([\w-]+)$/.exec(req.headers.authorization ?? '');
  return match ? { tenantId: match[1]!, userId: match[2]! } : undefined;
}

function buildApp(): express.Express {
  const app = express();
  app.use(httpRequestContext({ identify }));
  // Middleware after ours sees the context and can add request values.
  app.use((req: Request, _res: Response, next: NextFunction) => {
    getRequestContext().set('route', req.path);
    next();
  });
  app.get('/whoami', async (req: Request, res: Response) => {
    routeCalls++;
    const before = getRequestContext();
    await delay(Number(req.query.delay ?? 0));
    const after = getRequestContext();
    res.json({ same: before === after, requestId: after.requestId, tenantId: after.tenantId, userId: after.userId, route: after.get('route') });
  });
  app.get('/boom', () => {
    routeCalls++;
    throw new Error('route exploded');
  });
  app.get('/async-boom', async () => {
    routeCalls++;
    await delay(1);
    throw new Error('async route exploded');
  });
  app.use((error: Error, _req: Request, res: Response, _next: NextFunction) => {
    errorsSeen.push({ message: error.message, requestId: tryGetRequestContext()?.requestId });
    res.status(500).json({ handledBy: 'express-error-handler', message: error.message });
  });
  return app;
}

beforeAll(async () => {
  kit = await setupTestTracing();
  server = await listen(buildApp());
});

afterAll(async () => {
  await server?.close();
  await kit?.shutdown();
});

beforeEach(() => {
  kit.reset();
  routeCalls = 0;
  errorsSeen.length = 0;
});

const auth = (tenant: string, user: string): Array<[string, string]> => [['authorization', `Bearer ${tenant}:${user}`]];

function serverSpanFor(requestId: string | undefined): Promise<ReadableSpan> {
  expect(requestId, 'x-request-id response header').toBeTruthy();
  return waitFor(
    () => kit.spans().find((span) => span.kind === SpanKind.SERVER && span.attributes['isotrace.request_id'] === requestId),
    `SERVER span of request ${requestId}`,
  );
}

describe('httpRequestContext as Express middleware', () => {
  it('runs later middleware and routes inside the request context', async () => {
    const response = await rawRequest(server.port, { path: '/whoami', headers: auth('acme', 'alice') });
    expect(response.status).toBe(200);
    expect(response.json()).toEqual({ same: true, requestId: response.headers['x-request-id'], tenantId: 'acme', userId: 'alice', route: '/whoami' });
    const span = await serverSpanFor(response.headers['x-request-id']);
    expect(span.name).toBe('GET /whoami');
    expect(span.attributes).toMatchObject({ 'http.response.status_code': 200, 'http.route': '/whoami', 'url.path': '/whoami', 'isotrace.tenant_id': 'acme', 'user.id': 'alice' });
    expect(response.headers['x-correlation-id']).toBe(response.headers['x-request-id']);
  });

  it('keeps concurrent requests with random delays apart', async () => {
    const random = createRandom(testSeed());
    const plan = Array.from({ length: 100 }, (_, i) => ({ tenant: `t${i % 10}`, user: `u${i}`, delay: random.int(0, 15) }));
    const responses = await Promise.all(plan.map((p) => rawRequest(server.port, { path: `/whoami?delay=${p.delay}`, headers: auth(p.tenant, p.user) })));
    responses.forEach((response, i) => {
      expect(response.json(), `request ${i} (seed ${random.seed})`).toMatchObject({ same: true, tenantId: plan[i]!.tenant, userId: plan[i]!.user, requestId: response.headers['x-request-id'] });
    });
    await waitFor(() => kit.spans().filter((s) => s.kind === SpanKind.SERVER).length === plan.length, 'all SERVER spans');
    expectNoCrossRequestLeakage(kit.spans());
  });

  it.each([
    ['a route that throws', '/boom', 'route exploded'],
    ['an async route that rejects', '/async-boom', 'async route exploded'],
  ])('passes the error of %s to Express’s error handler, inside the request context, and marks the span ERROR', async (_what, path, message) => {
    const response = await rawRequest(server.port, { path, headers: auth('acme', 'alice') });
    expect(response.status).toBe(500);
    expect(response.json()).toEqual({ handledBy: 'express-error-handler', message });
    expect(errorsSeen).toEqual([{ message, requestId: response.headers['x-request-id'] }]);
    const span = await serverSpanFor(response.headers['x-request-id']);
    expect(span.attributes['http.response.status_code']).toBe(500);
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('records Express’s own 404 for an unknown route without marking the span ERROR', async () => {
    const response = await rawRequest(server.port, { path: '/nowhere', headers: auth('acme', 'alice') });
    expect(response.status).toBe(404);
    const span = await serverSpanFor(response.headers['x-request-id']);
    expect(span.attributes['http.response.status_code']).toBe(404);
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    // No route matched: nothing to name the span after but the method.
    expect(span.name).toBe('GET');
    expect(span.attributes['http.route']).toBeUndefined();
  });

  it('answers 401 without calling the routes or creating a span when identify() refuses', async () => {
    const refused = await rawRequest(server.port, { path: '/whoami', headers: [['authorization', 'Basic nope']] });
    expect(refused.status).toBe(401);
    expect(refused.json()).toEqual({ error: 'unauthenticated' });
    expect(routeCalls).toBe(0);
    const accepted = await rawRequest(server.port, { path: '/whoami', headers: auth('acme', 'alice') });
    await serverSpanFor(accepted.headers['x-request-id']);
    expect(kit.spans().filter((s) => s.kind === SpanKind.SERVER)).toHaveLength(1);
    expect(routeCalls).toBe(1);
  });

  it('runs a handler given to httpRequestContext(options, handler) as middleware that can call next()', async () => {
    const app = express();
    app.use(
      httpRequestContext({ identify }, (_req, _res, next) => {
        getRequestContext().set('stage', 'isotrace-handler');
        next();
      }),
    );
    app.get('/', (_req: Request, res: Response) => {
      res.json({ stage: getRequestContext().get('stage'), tenantId: getRequestContext().tenantId });
    });
    const own = await listen(app);
    try {
      const response = await rawRequest(own.port, { path: '/', headers: auth('globex', 'bob') });
      expect(response.json()).toEqual({ stage: 'isotrace-handler', tenantId: 'globex' });
    } finally {
      await own.close();
    }
  });
});

describe('httpRequestContext mounted under a path prefix', () => {
  /** isotrace mounted at /api, a router of items mounted at /api too, and an app-level error handler. */
  function mountedApp(options: { name?: string } = {}): express.Express {
    const app = express();
    app.use('/api', httpRequestContext({ identify, ...options }));
    const items = express.Router();
    items.get('/items/:id', (req: Request, res: Response) => {
      res.json({ id: req.params.id, tenantId: getRequestContext().tenantId });
    });
    items.get('/broken/:id', () => {
      throw new Error('item exploded');
    });
    app.use('/api', items);
    app.use((error: Error, _req: Request, res: Response, _next: NextFunction) => {
      res.status(500).json({ message: error.message });
    });
    return app;
  }

  async function withApp<T>(app: express.Express, fn: (port: number) => Promise<T>): Promise<T> {
    const own = await listen(app);
    try {
      return await fn(own.port);
    } finally {
      await own.close();
    }
  }

  it('records the full url.path, http.route and the name GET /api/items/:id', async () => {
    await withApp(mountedApp(), async (port) => {
      const response = await rawRequest(port, { path: '/api/items/7?expand=1', headers: auth('acme', 'alice') });
      expect(response.json()).toEqual({ id: '7', tenantId: 'acme' });
      const span = await serverSpanFor(response.headers['x-request-id']);
      expect(span.name).toBe('GET /api/items/:id');
      expect(span.attributes).toMatchObject({ 'url.path': '/api/items/7', 'http.route': '/api/items/:id', 'http.response.status_code': 200 });
    });
  });

  it('keeps the route of a route that threw when an app-level error handler answers, with error.type 500', async () => {
    await withApp(mountedApp(), async (port) => {
      const response = await rawRequest(port, { path: '/api/broken/3', headers: auth('acme', 'alice') });
      expect(response.status).toBe(500);
      const span = await serverSpanFor(response.headers['x-request-id']);
      expect(span.attributes).toMatchObject({ 'url.path': '/api/broken/3', 'http.route': '/api/broken/:id', 'http.response.status_code': 500, 'error.type': '500' });
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
    });
  });

  it('records the full path without a route when nothing under the prefix matched', async () => {
    await withApp(mountedApp(), async (port) => {
      const response = await rawRequest(port, { path: '/api/nowhere', headers: auth('acme', 'alice') });
      expect(response.status).toBe(404);
      const span = await serverSpanFor(response.headers['x-request-id']);
      expect(span.name).toBe('GET');
      expect(span.attributes['url.path']).toBe('/api/nowhere');
      expect(span.attributes['http.route']).toBeUndefined();
    });
  });

  it('keeps a name given in options, and still records http.route', async () => {
    await withApp(mountedApp({ name: 'items-api' }), async (port) => {
      const response = await rawRequest(port, { path: '/api/items/9', headers: auth('acme', 'alice') });
      const span = await serverSpanFor(response.headers['x-request-id']);
      expect(span.name).toBe('items-api');
      expect(span.attributes['http.route']).toBe('/api/items/:id');
    });
  });
});
