/**
 * The HTTP trust boundary, end to end with real servers: identity comes from
 * identify() only (forged baggage from an untrusted peer changes nothing, a
 * trusted peer's other baggage is kept), correlation ids are validated,
 * baggage reaches only propagateTo destinations (checked at real listening
 * servers), and malformed, oversized and repeated baggage/traceparent headers
 * are handled per W3C with a 200 and without growing the heap.
 *
 * Inbound headers are written by a raw node:net client, so they arrive exactly
 * as given (repeated headers included).
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { getRequestContext } from 'isotrace';
import { httpRequestContext, type Identity } from 'isotrace/http';
import { expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { exposeGc, heapAfterGc as heapAfterCollections } from '../helpers/guards.ts';
import { listen, openRawConnection, parseTraceHeader, rawRequest, recordingServer, waitFor, type RawResponse, type RecordingServer, type TestServer } from '../helpers/http.js';

let kit: TestTracing;
let allowed: RecordingServer;
let outside: RecordingServer;
let service: TestServer;
let handlerCalls = 0;

/** The app's auth: `authorization: Bearer <tenant>:<user>`. */
function identify(req: IncomingMessage): Identity | undefined {
  const match = /^Bearer ([\w-]+):([\w-]+)$/.exec(req.headers.authorization ?? '');
  return match ? { tenantId: match[1]!, userId: match[2]! } : undefined;
}

/** Stands in for an mTLS check: the mesh sidecar marks internal peers. */
function trustInbound(req: IncomingMessage): boolean {
  return req.headers['x-mesh-peer'] === 'verified';
}

interface Observed {
  ctx: { requestId: string; correlationId: string; tenantId: string; userId: string; jobId: string | undefined; traceId: string };
  allowed?: IncomingHttpHeaders;
  outside?: IncomingHttpHeaders;
}

async function getJson(url: string): Promise<IncomingHttpHeaders> {
  return (await (await fetch(url)).json()) as IncomingHttpHeaders;
}

async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
  handlerCalls++;
  const ctx = getRequestContext();
  const observed: Observed = {
    ctx: { requestId: ctx.requestId, correlationId: ctx.correlationId, tenantId: ctx.tenantId, userId: ctx.userId, jobId: ctx.jobId, traceId: ctx.traceId },
  };
  if (req.url === '/call') {
    [observed.allowed, observed.outside] = await Promise.all([getJson(`${allowed.origin}/inventory`), getJson(`${outside.origin}/tracker`)]);
  }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(observed));
}

beforeAll(async () => {
  allowed = await recordingServer();
  outside = await recordingServer();
  kit = await setupTestTracing({ propagateTo: [`127.0.0.1:${allowed.port}`] });
  service = await listen(httpRequestContext({ identify, trustInbound }, serve));
});

afterAll(async () => {
  await service?.close();
  await allowed?.close();
  await outside?.close();
  await kit?.shutdown();
});

beforeEach(() => {
  kit.reset();
  handlerCalls = 0;
});

type Headers = Array<[string, string]>;
const ALICE: Headers = [['authorization', 'Bearer acme:alice']];
const TRUSTED: Headers = [['x-mesh-peer', 'verified']];

async function call(headers: Headers, path = '/call'): Promise<{ response: RawResponse; observed: Observed }> {
  const response = await rawRequest(service.port, { path, headers });
  expect(response.status, response.body).toBe(200);
  return { response, observed: response.json<Observed>() };
}

function baggageOf(headers: IncomingHttpHeaders | undefined): Map<string, string> {
  const raw = headers?.baggage;
  if (raw === undefined) return new Map();
  return new Map(
    String(raw)
      .split(',')
      .map((member) => member.split(';')[0]!.trim())
      .map((member) => [decodeURIComponent(member.slice(0, member.indexOf('='))), decodeURIComponent(member.slice(member.indexOf('=') + 1))] as [string, string]),
  );
}

function serverSpanFor(response: RawResponse): Promise<ReadableSpan> {
  const requestId = response.headers['x-request-id'];
  return waitFor(() => kit.spans().find((s) => s.kind === SpanKind.SERVER && s.attributes['isotrace.request_id'] === requestId), `SERVER span of ${requestId}`);
}

const FORGED = 'isotrace.tenant_id=victim,isotrace.user_id=victim,isotrace.job_id=victim-job,team=blue';

describe('forged identity baggage', () => {
  it('from an untrusted peer: the request runs as the identified tenant, everywhere', async () => {
    const { response, observed } = await call([...ALICE, ['baggage', FORGED]]);
    expect(observed.ctx).toMatchObject({ tenantId: 'acme', userId: 'alice' });
    expect(observed.ctx.jobId).toBeUndefined();
    const span = await serverSpanFor(response);
    expect(span.attributes).toMatchObject({ 'isotrace.tenant_id': 'acme', 'user.id': 'alice' });
    expect(span.attributes['isotrace.job_id']).toBeUndefined();
    const downstream = baggageOf(observed.allowed);
    expect(Object.fromEntries(downstream)).toEqual({
      'isotrace.correlation_id': observed.ctx.correlationId,
      'isotrace.tenant_id': 'acme',
      'isotrace.user_id': 'alice',
    });
    for (const client of kit.spans().filter((s) => s.kind === SpanKind.CLIENT)) {
      expect(client.attributes['isotrace.tenant_id']).toBe('acme');
    }
    expect(JSON.stringify(kit.spans().map((s) => s.attributes))).not.toContain('victim');
  });

  it('from a trusted peer: its other baggage is kept and forwarded, but tenant and user still come from identify()', async () => {
    const { observed } = await call([...ALICE, ...TRUSTED, ['baggage', `${FORGED},isotrace.correlation_id=mesh-corr-1`]]);
    expect(observed.ctx).toMatchObject({ tenantId: 'acme', userId: 'alice', correlationId: 'mesh-corr-1' });
    expect(observed.ctx.jobId).toBeUndefined();
    expect(Object.fromEntries(baggageOf(observed.allowed))).toEqual({
      team: 'blue',
      'isotrace.correlation_id': 'mesh-corr-1',
      'isotrace.tenant_id': 'acme',
      'isotrace.user_id': 'alice',
    });
    expect(observed.outside?.baggage).toBeUndefined();
  });

  it('keeps 100 concurrent requests, each forging another tenant (half of them trusted), on their own identity downstream', async () => {
    const plan = Array.from({ length: 100 }, (_, i) => ({ tenant: `t${i % 10}`, user: `u${i}`, forged: `t${(i + 1) % 10}`, trusted: i % 2 === 0 }));
    const results = await Promise.all(
      plan.map((p) =>
        call([
          ['authorization', `Bearer ${p.tenant}:${p.user}`],
          ['baggage', `isotrace.tenant_id=${p.forged},isotrace.user_id=u-forged,mark=${p.user}`],
          ...(p.trusted ? TRUSTED : []),
        ]),
      ),
    );
    results.forEach(({ observed }, i) => {
      const p = plan[i]!;
      const downstream = baggageOf(observed.allowed);
      expect([observed.ctx.tenantId, downstream.get('isotrace.tenant_id'), downstream.get('isotrace.user_id')], `request ${i}`).toEqual([p.tenant, p.tenant, p.user]);
      expect(downstream.get('mark'), `request ${i}: trusted baggage only`).toBe(p.trusted ? p.user : undefined);
      expect(parseTraceHeader(observed.allowed?.traceparent as string)?.traceId).toBe(observed.ctx.traceId);
    });
    await waitFor(() => kit.spans().filter((s) => s.kind === SpanKind.SERVER).length === plan.length, 'all SERVER spans');
    expectNoCrossRequestLeakage(kit.spans());
  });
});

describe('baggage only to propagateTo destinations', () => {
  it('a host outside propagateTo gets traceparent and no baggage; the allowed one gets the identity', async () => {
    const { observed } = await call([...ALICE, ...TRUSTED, ['baggage', 'team=blue']]);
    expect(outside.received.at(-1)?.baggage).toBeUndefined();
    expect(observed.outside?.baggage).toBeUndefined();
    expect(parseTraceHeader(observed.outside?.traceparent as string)?.traceId).toBe(observed.ctx.traceId);
    expect(baggageOf(observed.allowed).get('isotrace.tenant_id')).toBe('acme');
    expect(baggageOf(observed.allowed).get('team')).toBe('blue');
  });
});

describe('correlation ids', () => {
  const valid = ['order-42.abc:x@y', 'A'.repeat(128), 'a'];

  it.each(valid)('accepts a valid x-correlation-id %#, from an untrusted peer, and passes it on', async (id) => {
    const { response, observed } = await call([...ALICE, ['x-correlation-id', id]]);
    expect(observed.ctx.correlationId).toBe(id);
    expect(response.headers['x-correlation-id']).toBe(id);
    expect(baggageOf(observed.allowed).get('isotrace.correlation_id')).toBe(id);
    expect((await serverSpanFor(response)).attributes['isotrace.correlation_id']).toBe(id);
  });

  const invalidHeaders: Array<[string, string]> = [
    ['129 characters', 'B'.repeat(129)],
    ['a space', 'has space'],
    ['a tab', 'tab\tinside'],
    ['unicode', 'café-☕'],
    ['empty', ''],
    ['a comma', 'a,b'],
    ['a semicolon', 'a;b'],
    ['markup', '<script>'],
  ];

  it.each(invalidHeaders)('replaces an x-correlation-id with %s by the request id', async (_what, id) => {
    const { response, observed } = await call([...ALICE, ['x-correlation-id', id]]);
    expect(observed.ctx.correlationId).toBe(observed.ctx.requestId);
    expect(response.headers['x-correlation-id']).toBe(response.headers['x-request-id']);
    expect(baggageOf(observed.allowed).get('isotrace.correlation_id')).toBe(observed.ctx.requestId);
  });

  it.each([
    ['\u0001', 'SOH'],
    ['\u007f', 'DEL'],
    ['\u001b[31m', 'ESC'],
  ])('never takes a raw control character (%#: %s) in x-correlation-id as the correlation id', async (control) => {
    const response = await rawRequest(service.port, { path: '/call', headers: [...ALICE, ['x-correlation-id', `ctl${control}x`]] });
    if (response.status === 200) {
      const observed = response.json<Observed>();
      expect(observed.ctx.correlationId).toBe(observed.ctx.requestId);
    } else {
      // node:http's parser refuses control characters in header values before any handler runs.
      expect(response.status).toBe(400);
      expect(handlerCalls).toBe(0);
    }
  });

  it('replaces two x-correlation-id headers (joined by node:http into one invalid value)', async () => {
    const { observed } = await call([...ALICE, ['x-correlation-id', 'first'], ['x-correlation-id', 'second']]);
    expect(observed.ctx.correlationId).toBe(observed.ctx.requestId);
  });

  it('accepts a valid correlation id from untrusted baggage (and nothing else from it)', async () => {
    const { observed } = await call([...ALICE, ['baggage', 'isotrace.correlation_id=from-baggage-7,team=blue']]);
    expect(observed.ctx.correlationId).toBe('from-baggage-7');
    expect(baggageOf(observed.allowed).get('team')).toBeUndefined();
  });

  it('prefers a valid header over baggage, and falls back to valid baggage when the header is invalid', async () => {
    const both = await call([...ALICE, ['x-correlation-id', 'from-header'], ['baggage', 'isotrace.correlation_id=from-baggage']]);
    expect(both.observed.ctx.correlationId).toBe('from-header');
    const badHeader = await call([...ALICE, ['x-correlation-id', 'bad header'], ['baggage', 'isotrace.correlation_id=from-baggage']]);
    expect(badHeader.observed.ctx.correlationId).toBe('from-baggage');
  });

  const invalidBaggage: Array<[string, string]> = [
    ['a percent-encoded newline (control character)', 'x%0Ay'],
    ['a percent-encoded NUL', '%00'],
    ['a percent-encoded escape sequence', '%1B%5B31m'],
    ['a space', 'a%20b'],
    ['unicode', 'caf%C3%A9'],
    ['129 characters', 'C'.repeat(129)],
    ['invalid percent-encoding', '%E0%A4%A'],
  ];

  it.each(invalidBaggage)('replaces a baggage correlation id with %s by the request id', async (_what, value) => {
    for (const headers of [ALICE, [...ALICE, ...TRUSTED]]) {
      const { observed } = await call([...headers, ['baggage', `isotrace.correlation_id=${value}`]]);
      expect(observed.ctx.correlationId).toBe(observed.ctx.requestId);
      expect(baggageOf(observed.allowed).get('isotrace.correlation_id')).toBe(observed.ctx.requestId);
    }
  });
});

/** Hostile inbound headers, all below node:http's own 16 KiB header limit. */
const hostile: Array<[string, Headers]> = [
  ['baggage > 8 KiB', [['baggage', Array.from({ length: 100 }, (_, i) => `k${i}=${'v'.repeat(100)}`).join(',')]]],
  ['baggage just under the 16 KiB header limit', [['baggage', Array.from({ length: 150 }, (_, i) => `k${i}=${'w'.repeat(95)}`).join(',')]]],
  ['baggage with > 64 members', [['baggage', Array.from({ length: 100 }, (_, i) => `m${i}=${i}`).join(',')]]],
  ['baggage with > 180 members', [['baggage', Array.from({ length: 400 }, (_, i) => `n${i}=${i}`).join(',')]]],
  ['one baggage member > 4 KiB', [['baggage', `huge=${'h'.repeat(5000)},small=1`]]],
  ['invalid percent-encoding', [['baggage', 'a=%E0%A4%A,b=%ZZ,c=%,%zz=1,isotrace.tenant_id=%FF']]],
  ['percent-encoded control characters', [['baggage', 'a=%00%01,b=%0D%0Ainjected: yes,c=%1B%5B31m']]],
  ['members without keys or values', [['baggage', ',,,=,=x,k=,;;;,k;p=1, ,']]],
  ['properties and odd whitespace', [['baggage', '  k1 = v1 ;p1=1;p2 ,\tk2=v2\t, k3=v3;']]],
  ['garbage', [['baggage', '\u0000'.replace('\u0000', '!@#$%^&*()')]]],
  [
    'repeated baggage headers',
    [
      ['baggage', 'one=1,isotrace.tenant_id=victim'],
      ['baggage', 'two=2'],
    ],
  ],
  [
    'repeated traceparent headers with baggage',
    [
      ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
      ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
      ['baggage', 'one=1'],
    ],
  ],
  ['a huge invalid traceparent', [['traceparent', `00-${'a'.repeat(8000)}`]]],
  ['a huge tracestate', [['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'], ['tracestate', Array.from({ length: 500 }, (_, i) => `v${i}=x`).join(',')]]],
];

describe('malformed, oversized and repeated headers (W3C handling, never an error)', () => {
  it.each(hostile)('%s: 200, identified tenant, bounded well-formed baggage downstream', async (_what, headers) => {
    for (const trust of [[], TRUSTED]) {
      const { observed } = await call([...ALICE, ...trust, ...headers]);
      expect(observed.ctx).toMatchObject({ tenantId: 'acme', userId: 'alice' });
      const raw = String(observed.allowed?.baggage ?? '');
      expect(raw.length).toBeLessThanOrEqual(8192);
      const downstream = baggageOf(observed.allowed);
      expect(downstream.get('isotrace.tenant_id')).toBe('acme');
      expect(downstream.get('isotrace.user_id')).toBe('alice');
      if (trust.length === 0) expect([...downstream.keys()].sort()).toEqual(['isotrace.correlation_id', 'isotrace.tenant_id', 'isotrace.user_id']);
      expect(observed.outside?.baggage).toBeUndefined();
    }
  });

  it('forwards every member of a trusted baggage of 60 members (the spec’s must-propagate size) unchanged', async () => {
    const members = Array.from({ length: 60 }, (_, i) => [`m${i}`, `value-${i}`] as const);
    const { observed } = await call([...ALICE, ...TRUSTED, ['baggage', members.map(([k, v]) => `${k}=${v}`).join(',')]]);
    const downstream = baggageOf(observed.allowed);
    for (const [key, value] of members) expect(downstream.get(key), key).toBe(value);
  });

  it('forwards only whole members of an oversized trusted baggage', async () => {
    const members = new Map<string, string>(Array.from({ length: 100 }, (_, i) => [`k${i}`, `${i}:${'v'.repeat(100)}`]));
    const { observed } = await call([...ALICE, ...TRUSTED, ['baggage', [...members].map(([k, v]) => `${k}=${v}`).join(',')]]);
    const downstream = baggageOf(observed.allowed);
    const forwarded = [...downstream].filter(([key]) => !key.startsWith('isotrace.'));
    expect(forwarded.length).toBeGreaterThan(0);
    for (const [key, value] of forwarded) expect(value, key).toBe(members.get(key));
  });

  it('combines repeated baggage headers from a trusted peer', async () => {
    const { observed } = await call([...ALICE, ...TRUSTED, ['baggage', 'one=1'], ['baggage', 'two=2']]);
    const downstream = baggageOf(observed.allowed);
    expect([downstream.get('one'), downstream.get('two')]).toEqual(['1', '2']);
  });

  it('starts a fresh trace for repeated traceparent headers (neither is continued)', async () => {
    const { observed } = await call([
      ...ALICE,
      ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
      ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
    ]);
    expect(['4bf92f3577b34da6a3ce929d0e0e4736', '0af7651916cd43dd8448eb211c80319c']).not.toContain(observed.ctx.traceId);
  });

  it('leaves headers over 16 KiB to node:http, which answers 431 before isotrace or the handler run', async () => {
    const response = await rawRequest(service.port, { path: '/call', headers: [...ALICE, ['baggage', `k=${'x'.repeat(17 * 1024)}`]] });
    expect(response.status).toBe(431);
    expect(handlerCalls).toBe(0);
    // The server is unaffected.
    await call(ALICE, '/echo');
  });
});


describe('memory', () => {
  it('stays bounded over 2,000 hostile requests', async () => {
    const gc = exposeGc();
    const sendAll = async (count: number): Promise<void> => {
      // 50 keep-alive connections sending in turn: the cost is in the headers, not in TCP handshakes.
      const LANES = 50;
      await Promise.all(
        Array.from({ length: LANES }, async (_, lane) => {
          const connection = await openRawConnection(service.port);
          try {
            for (let i = lane; i < count; i += LANES) {
              const [what, headers] = hostile[i % hostile.length]!;
              const response = await connection.request({ path: '/echo', headers: [...ALICE, ...(i % 2 === 0 ? TRUSTED : []), ...headers] });
              if (response.status !== 200) throw new Error(`request ${i} (${what}) answered ${response.status}`);
            }
          } finally {
            connection.close();
          }
        }),
      );
      // Spans end just after their response; the exporter must hold all of them before it is emptied.
      await waitFor(() => kit.spans().filter((s) => s.kind === SpanKind.SERVER).length >= count, `${count} SERVER spans`);
      kit.reset();
    };
    const heapAfterGc = (): number => heapAfterCollections(gc!);

    await sendAll(100); // warm up: JIT, socket and parser pools
    if (!gc) {
      console.warn('http-security memory check: skipped the heap assertion, gc() could not be exposed in this process (the 2,000 requests still ran and had to answer 200).');
      await sendAll(2000);
      return;
    }
    const before = heapAfterGc();
    await sendAll(2000);
    const grownBytes = heapAfterGc() - before;
    // The 2,000 requests carry ~6.5 MiB of hostile header bytes (retaining their headers grows the heap by more than
    // that); a run that keeps nothing grows by well under 1 MiB.
    expect(grownBytes, `heap grew by ${(grownBytes / 2 ** 20).toFixed(2)} MiB`).toBeLessThan(3 * 2 ** 20);
  });
});
