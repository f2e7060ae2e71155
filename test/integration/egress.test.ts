/**
 * Egress: identity baggage reaches only propagateTo destinations, decided per
 * request (per redirect hop) on where the request really goes — the origin
 * undici dispatches to, the host and port node:http connects to — never on
 * the URL a span reconstructs. Real servers on 127.0.0.1 (and a unix socket)
 * record what arrived; every destination still gets traceparent.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http, { type IncomingHttpHeaders, type RequestOptions } from 'node:http';
import https from 'node:https';
import { createConnection, createServer, type AddressInfo, type LookupFunction, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { withRequestContext } from 'isotrace';
import { httpRequestContext } from 'isotrace/http';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createWorkerPool, type WorkerPool } from 'isotrace/workers';
import { listen, parseTraceHeader, type TestServer } from '../helpers/http.js';
import type { InjectedInWorker } from '../fixtures/egress/inject-worker.ts';

const INJECT_WORKER = new URL('../fixtures/egress/inject-worker.ts', import.meta.url);
const TLS_DIR = new URL('../fixtures/tls/', import.meta.url);
const tls = { key: readFileSync(new URL('localhost-key.pem', TLS_DIR)), cert: readFileSync(new URL('localhost-cert.pem', TLS_DIR)) };

interface Hop {
  path: string;
  headers: IncomingHttpHeaders;
}

/** A server that records every request; `/redirect?to=<url>` answers 302 to that URL, anything else 200. */
interface HopServer extends TestServer {
  readonly hops: Hop[];
}

function recordHops(hops: Hop[]): http.RequestListener {
  return (req, res) => {
    hops.push({ path: req.url ?? '', headers: req.headers });
    const to = req.url?.startsWith('/redirect?') ? new URLSearchParams(req.url.slice('/redirect?'.length)).get('to') : null;
    if (to) {
      res.writeHead(302, { location: to }).end();
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(req.headers));
  };
}

async function hopServer(): Promise<HopServer> {
  const hops: Hop[] = [];
  return Object.assign(await listen(recordHops(hops)), { hops });
}

let kit: TestTracing;
/** In propagateTo as `127.0.0.1:<port>`. */
let allowed: HopServer;
/** In no propagateTo target by its own address. */
let unlisted: HopServer;
/** In propagateTo as the URL prefix `<origin>/v1`. */
let prefixed: HopServer;
/** HTTPS, in propagateTo as the URL prefix `https://127.0.0.1:<port>/secure`. */
let secure: HopServer;
let marker = 0;

/** fetch's own dispatcher class (Node's bundled undici), for dispatchers with connect options. */
type Dispatcher = { close(): Promise<void> } & object;
async function undiciAgent(options: unknown): Promise<Dispatcher> {
  await fetch(`${unlisted.origin}/warm-up`).then((response) => response.arrayBuffer());
  const Agent = (globalThis as Record<symbol, { constructor: new (options: unknown) => Dispatcher }>)[Symbol.for('undici.globalDispatcher.1')]!.constructor;
  return new Agent(options);
}

beforeAll(async () => {
  [allowed, unlisted, prefixed] = await Promise.all([hopServer(), hopServer(), hopServer()]);
  const secureHops: Hop[] = [];
  secure = Object.assign(await listen(https.createServer(tls, recordHops(secureHops)) as unknown as http.Server), { hops: secureHops });
  kit = await setupTestTracing({
    propagateTo: [`127.0.0.1:${allowed.port}`, 'inventory.internal', '*.tenants.internal', `${prefixed.origin}/v1`, `https://127.0.0.1:${secure.port}/secure`],
  });
});

afterAll(async () => {
  await Promise.all([allowed, unlisted, prefixed, secure].map((server) => server?.close()));
  await kit?.shutdown();
});

/** A path no other test uses, so each test finds its own hops. */
const uniquePath = (): string => `/case-${++marker}`;
const hopsWith = (server: HopServer, path: string): Hop[] => server.hops.filter((hop) => hop.path.includes(path));

/** Runs `fn` in a request for acme/alice; resolves with the request's trace id. */
async function inRequest(fn: () => Promise<unknown>): Promise<string> {
  return withRequestContext({ tenantId: 'acme', userId: 'alice' }, async (ctx) => {
    await fn();
    return ctx.traceId;
  });
}

function expectTraceparentOnly(hop: Hop | undefined, traceId: string): void {
  expect(hop, 'the request arrived').toBeDefined();
  expect(parseTraceHeader(hop!.headers.traceparent as string)?.traceId, 'traceparent goes everywhere').toBe(traceId);
  expect(hop!.headers.baggage, `no baggage at ${hop!.path}`).toBeUndefined();
}

function expectIdentityBaggage(hop: Hop | undefined, traceId: string): void {
  expect(hop, 'the request arrived').toBeDefined();
  expect(parseTraceHeader(hop!.headers.traceparent as string)?.traceId).toBe(traceId);
  expect(hop!.headers.baggage).toContain('isotrace.tenant_id=acme');
  expect(hop!.headers.baggage).toContain('isotrace.user_id=alice');
}

/** One node:http request with `options`, read to the end. */
function nodeRequest(options: RequestOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .request(options, (res) => {
        res.resume();
        res.on('end', resolve);
      })
      .on('error', reject)
      .end();
  });
}

async function fetchOk(url: string, init?: RequestInit): Promise<void> {
  const response = await fetch(url, init);
  await response.arrayBuffer();
  expect(response.status).toBe(200);
}

/** Resolves every name to 127.0.0.1: `*.tenants.internal` hosts reach the local servers. */
const toLoopback: LookupFunction = (_hostname, options, callback) => {
  if (options.all) (callback as unknown as (error: null, addresses: Array<{ address: string; family: number }>) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
};

describe('fetch: decided on the dispatched origin, not on url.full', () => {
  it('a path that starts with //<allowed host> sends no baggage to the server it really reaches', async () => {
    const path = uniquePath();
    const traceId = await inRequest(() => fetchOk(`${unlisted.origin}//inventory.internal${path}`));
    expectTraceparentOnly(hopsWith(unlisted, path)[0], traceId);
  });

  it('a path that starts with //<allowed host:port> sends no baggage either', async () => {
    const path = uniquePath();
    const traceId = await inRequest(() => fetchOk(`${unlisted.origin}//127.0.0.1:${allowed.port}${path}`));
    expectTraceparentOnly(hopsWith(unlisted, path)[0], traceId);
  });

  it('redirects: an allowed host redirecting elsewhere gives the next hop no baggage', async () => {
    const path = uniquePath();
    const traceId = await inRequest(() => fetchOk(`${allowed.origin}/redirect?to=${encodeURIComponent(`${unlisted.origin}${path}`)}`));
    expectIdentityBaggage(allowed.hops.find((hop) => hop.path.includes(encodeURIComponent(path))), traceId);
    expectTraceparentOnly(hopsWith(unlisted, path)[0], traceId);
  });

  it('redirects: a disallowed URL redirecting to a //allowed-shaped path gives no hop baggage', async () => {
    const path = uniquePath();
    const traceId = await inRequest(() => fetchOk(`${unlisted.origin}/redirect?to=${encodeURIComponent(`${unlisted.origin}//inventory.internal${path}`)}`));
    expectTraceparentOnly(unlisted.hops.find((hop) => hop.path.includes(encodeURIComponent(path))), traceId);
    expectTraceparentOnly(unlisted.hops.find((hop) => hop.path === `//inventory.internal${path}`), traceId);
  });

  it('redirects: each hop is decided on its own destination (a disallowed host redirecting to an allowed one)', async () => {
    const path = uniquePath();
    const traceId = await inRequest(() => fetchOk(`${unlisted.origin}/redirect?to=${encodeURIComponent(`${allowed.origin}${path}`)}`));
    expectTraceparentOnly(unlisted.hops.find((hop) => hop.path.includes(encodeURIComponent(path))), traceId);
    expectIdentityBaggage(hopsWith(allowed, path)[0], traceId);
  });
});

describe('node:http: decided on what Node connects to', () => {
  it('host and hostname both given: Node connects to hostname, and so does the decision (disallowed hostname)', async () => {
    const path = uniquePath();
    const traceId = await inRequest(() => nodeRequest({ host: 'inventory.internal', hostname: '127.0.0.1', port: unlisted.port, path }));
    expectTraceparentOnly(hopsWith(unlisted, path)[0], traceId);
  });

  it('host and hostname both given: an allowed hostname gets baggage whatever host says', async () => {
    const path = uniquePath();
    const traceId = await inRequest(() => nodeRequest({ host: 'unlisted.example', hostname: '127.0.0.1', port: allowed.port, path }));
    expectIdentityBaggage(hopsWith(allowed, path)[0], traceId);
  });

  it('only a Host header naming an allowed host: the connection (localhost) decides', async () => {
    const path = uniquePath();
    const traceId = await inRequest(() => nodeRequest({ hostname: '127.0.0.1', port: unlisted.port, path, headers: { host: 'inventory.internal' } }));
    expectTraceparentOnly(hopsWith(unlisted, path)[0], traceId);
  });

  it("a path without a leading slash ('@inventory.internal/x') sends no baggage", async () => {
    // node:http servers refuse such a request line before any handler runs: read the request head off the socket.
    const heads: string[] = [];
    const raw = createServer((socket) => {
      let head = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        head += chunk;
        if (!head.includes('\r\n\r\n')) return;
        heads.push(head);
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      });
    });
    raw.listen(0, '127.0.0.1');
    await once(raw, 'listening');
    try {
      const path = uniquePath();
      const { port } = raw.address() as AddressInfo;
      const traceId = await inRequest(() => nodeRequest({ hostname: '127.0.0.1', port, path: `@inventory.internal${path}` }));
      const head = heads.find((candidate) => candidate.startsWith(`GET @inventory.internal${path} `));
      expect(head, 'the request arrived').toBeDefined();
      expect(head).toMatch(new RegExp(`^traceparent: 00-${traceId}-`, 'im'));
      expect(head).not.toMatch(/^baggage:/im);
    } finally {
      raw.close();
    }
  });

  it('socketPath: a unix socket never gets baggage, even with an allowed hostname', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'isotrace-egress-'));
    const hops: Hop[] = [];
    const server = http.createServer(recordHops(hops));
    server.listen(join(dir, 'http.sock'));
    await once(server, 'listening');
    try {
      const path = uniquePath();
      const traceId = await inRequest(() => nodeRequest({ socketPath: join(dir, 'http.sock'), hostname: 'inventory.internal', path }));
      expectTraceparentOnly(hops.find((hop) => hop.path === path), traceId);
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an agent whose createConnection goes elsewhere: no baggage', async () => {
    class Elsewhere extends http.Agent {
      override createConnection(): Socket {
        return createConnection({ host: '127.0.0.1', port: unlisted.port });
      }
    }
    const agent = new Elsewhere();
    const path = uniquePath();
    const traceId = await inRequest(() => nodeRequest({ hostname: 'inventory.internal', agent, path }));
    agent.destroy();
    expectTraceparentOnly(hopsWith(unlisted, path)[0], traceId);
  });

  it('a createConnection option: no baggage', async () => {
    const path = uniquePath();
    const traceId = await inRequest(() => nodeRequest({ hostname: 'inventory.internal', path, createConnection: () => createConnection({ host: '127.0.0.1', port: unlisted.port }) }));
    expectTraceparentOnly(hopsWith(unlisted, path)[0], traceId);
  });

  it("an agent's own host/port options win over the request's, for the connection and the decision", async () => {
    const toUnlisted = new http.Agent({ host: '127.0.0.1', port: unlisted.port } as http.AgentOptions);
    const toAllowed = new http.Agent({ host: '127.0.0.1', port: allowed.port } as http.AgentOptions);
    const path = uniquePath();
    const traceId = await inRequest(async () => {
      await nodeRequest({ hostname: 'inventory.internal', agent: toUnlisted, path });
      await nodeRequest({ hostname: 'unlisted.example', agent: toAllowed, path });
    });
    toUnlisted.destroy();
    toAllowed.destroy();
    expectTraceparentOnly(hopsWith(unlisted, path)[0], traceId);
    expectIdentityBaggage(hopsWith(allowed, path)[0], traceId);
  });

  it('a plain keep-alive agent to an allowed host still gets baggage', async () => {
    const agent = new http.Agent({ keepAlive: true });
    const path = uniquePath();
    const traceId = await inRequest(() => nodeRequest({ hostname: '127.0.0.1', port: allowed.port, agent, path }));
    agent.destroy();
    expectIdentityBaggage(hopsWith(allowed, path)[0], traceId);
  });
});

describe('propagateTo forms', () => {
  const clients: Array<[string, (url: string) => Promise<void>]> = [
    ['fetch', (url) => fetchOk(url)],
    ['node:http', (url) => nodeRequest(new URL(url))],
  ];

  describe.each(clients)('URL prefixes end on a path-segment boundary (%s)', (_name, call) => {
    it.each([
      ['/v1', true],
      ['/v1/items', true],
      ['/v10/items', false],
      ['/v1x', false],
      ['/', false],
    ])('%s → baggage: %s', async (pathname, expected) => {
      const query = `?marker=${++marker}`;
      const traceId = await inRequest(() => call(`${prefixed.origin}${pathname}${query}`));
      const hop = prefixed.hops.find((candidate) => candidate.path.endsWith(query));
      if (expected) expectIdentityBaggage(hop, traceId);
      else expectTraceparentOnly(hop, traceId);
    });
  });

  describe('an https URL prefix matches https requests (scheme and port included)', () => {
    let trusting: Dispatcher;
    beforeAll(async () => {
      trusting = await undiciAgent({ connect: { ca: tls.cert } });
    });
    afterAll(async () => {
      await trusting?.close();
    });

    it.each([
      ['fetch', (url: string) => fetchOk(url, { dispatcher: trusting } as RequestInit)],
      ['node:https', (url: string) => new Promise<void>((resolve, reject) => {
        https.get(url, { ca: tls.cert }, (res) => res.resume().on('end', resolve)).on('error', reject);
      })],
    ])('%s', async (_name, call) => {
      const inside = uniquePath();
      const outside = uniquePath();
      const traceId = await inRequest(async () => {
        await call(`${secure.origin.replace('http:', 'https:')}/secure${inside}`);
        await call(`${secure.origin.replace('http:', 'https:')}/secured${outside}`);
      });
      expectIdentityBaggage(hopsWith(secure, inside)[0], traceId);
      expectTraceparentOnly(hopsWith(secure, outside)[0], traceId);
    });
  });

  describe('*.tenants.internal matches subdomains on a label boundary', () => {
    let loopbackAgent: Dispatcher;

    beforeAll(async () => {
      // A lookup that sends every name to 127.0.0.1.
      loopbackAgent = await undiciAgent({ connect: { lookup: toLoopback } });
    });
    afterAll(async () => {
      await loopbackAgent?.close();
    });

    const viaFetch = (url: string): Promise<void> => fetchOk(url, { dispatcher: loopbackAgent } as RequestInit);
    const viaNodeHttp = (url: string): Promise<void> => {
      const { hostname, port, pathname } = new URL(url);
      return nodeRequest({ hostname, port, path: pathname, lookup: toLoopback });
    };

    describe.each([
      ['fetch', viaFetch],
      ['node:http', viaNodeHttp],
    ])('%s', (_name, call) => {
      it.each([
        ['a.tenants.internal', true],
        ['x.a.tenants.internal', true],
        ['tenants.internal', false],
        ['eviltenants.internal', false],
        ['a.tenants.internal.evil', false],
      ])('%s → baggage: %s', async (host, expected) => {
        const path = uniquePath();
        const traceId = await inRequest(() => call(`http://${host}:${unlisted.port}${path}`));
        const hop = hopsWith(unlisted, path)[0];
        if (expected) expectIdentityBaggage(hop, traceId);
        else expectTraceparentOnly(hop, traceId);
        expect(hop?.headers.host).toBe(`${host}:${unlisted.port}`);
      });
    });
  });
});

describe('hand-written propagation.inject() fails closed', () => {
  it('in the main thread: traceparent, no baggage — with or without a CLIENT span naming an allowed destination', async () => {
    const url = `${allowed.origin}/by-hand`;
    const { plain, clientSpan, traceId } = await withRequestContext({ tenantId: 'acme', userId: 'alice' }, (ctx) => {
      const plain: Record<string, string> = {};
      propagation.inject(context.active(), plain);
      const span = trace.getTracer('egress-test').startSpan('GET', {
        kind: SpanKind.CLIENT,
        attributes: { 'url.full': url, 'server.address': '127.0.0.1', 'server.port': allowed.port },
      });
      const clientSpan: Record<string, string> = {};
      propagation.inject(trace.setSpan(context.active(), span), clientSpan);
      span.end();
      return { plain, clientSpan, traceId: ctx.traceId };
    });
    for (const carrier of [plain, clientSpan]) {
      expect(parseTraceHeader(carrier.traceparent)?.traceId).toBe(traceId);
      expect(carrier.baggage).toBeUndefined();
    }
  });

  describe('in a worker thread', () => {
    let pool: WorkerPool;
    beforeAll(() => {
      pool = createWorkerPool({ filename: INJECT_WORKER, maxThreads: 1, minThreads: 1 });
    });
    afterAll(async () => {
      await pool?.close();
    });

    it('the worker applies the same policy: traceparent, no baggage, even for an allowed destination', async () => {
      const { seen, traceId } = await withRequestContext({ tenantId: 'acme', userId: 'alice' }, async (ctx) => ({
        seen: (await pool.run({ url: `${allowed.origin}/from-worker` })) as InjectedInWorker,
        traceId: ctx.traceId,
      }));
      expect(seen.tenantInContext, 'the worker context holds the identity').toBe('acme');
      for (const carrier of [seen.plain, seen.clientSpan]) {
        expect(parseTraceHeader(carrier.traceparent)?.traceId).toBe(traceId);
        expect(carrier.baggage).toBeUndefined();
      }
    });
  });
});

describe('nested requests and a trusted peer’s baggage', () => {
  let app: TestServer;

  beforeAll(async () => {
    // The app trusts this caller's baggage (region=eu); inside, it runs nested requests and calls the allowed host.
    app = await listen(
      httpRequestContext({ identify: () => ({ tenantId: 'acme', userId: 'alice' }), trustInbound: () => true }, async (req, res) => {
        const nested = new URL(req.url ?? '/', 'http://app').searchParams;
        const path = nested.get('path')!;
        await withRequestContext({ tenantId: nested.get('tenant')!, userId: nested.get('user')! }, () => fetchOk(`${allowed.origin}${path}`));
        res.end('ok');
      }),
    );
  });
  afterAll(async () => {
    await app?.close();
  });

  beforeEach(() => {
    kit.reset();
  });

  async function callApp(tenant: string, user: string): Promise<Hop> {
    const path = uniquePath();
    const response = await fetch(`${app.origin}/?tenant=${tenant}&user=${user}&path=${path}`, { headers: { baggage: 'region=eu' } });
    expect(response.status).toBe(200);
    await response.text();
    return hopsWith(allowed, path)[0]!;
  }

  it('a nested request for another tenant does not forward the outer trusted-peer entries', async () => {
    const hop = await callApp('globex', 'alice');
    expect(hop.headers.baggage).toContain('isotrace.tenant_id=globex');
    expect(hop.headers.baggage).not.toContain('region=eu');
  });

  it('a nested request for another user does not forward them either', async () => {
    const hop = await callApp('acme', 'bob');
    expect(hop.headers.baggage).toContain('isotrace.user_id=bob');
    expect(hop.headers.baggage).not.toContain('region=eu');
  });

  it('a nested request for the same tenant and user keeps them', async () => {
    const hop = await callApp('acme', 'alice');
    expect(hop.headers.baggage).toContain('isotrace.tenant_id=acme');
    expect(hop.headers.baggage).toContain('region=eu');
  });
});
