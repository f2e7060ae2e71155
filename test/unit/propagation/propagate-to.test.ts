/**
 * Which outbound destinations receive isotrace baggage: every propagateTo form
 * (host, host:port, URL prefix, RegExp, predicate), checked with real calls
 * through fetch and node:http at real listening servers. Every destination
 * gets traceparent; only matched ones get baggage.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { withRequestContext } from 'isotrace';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { parseTraceHeader, recordingServer, type RecordingServer } from '../../helpers/http.js';

let kit: TestTracing;
const servers: Record<'hostPort' | 'prefix' | 'regex' | 'globalRegex' | 'predicate' | 'throwing' | 'hostname' | 'lookalike' | 'unlisted', RecordingServer> = {} as never;

beforeAll(async () => {
  for (const name of ['hostPort', 'prefix', 'regex', 'globalRegex', 'predicate', 'throwing', 'hostname', 'lookalike', 'unlisted'] as const) {
    servers[name] = await recordingServer();
  }
  const port = (name: keyof typeof servers): string => String(servers[name].port);
  kit = await setupTestTracing({
    propagateTo: [
      `127.0.0.1:${port('hostPort')}`,
      `${servers.prefix.origin}/allowed/`,
      new RegExp(`^http://127\\.0\\.0\\.1:${port('regex')}/re/`),
      new RegExp(`:${port('globalRegex')}/`, 'g'),
      (url) => url.port === port('predicate') && url.searchParams.has('share'),
      (url) => {
        if (url.port === port('throwing')) throw new Error('predicate bug');
        return false;
      },
      'localhost',
      // A prefix naming port 1234 must not match port 12345: the prefix ends at a host boundary.
      `http://127.0.0.1:${port('lookalike').slice(0, -1)}`,
    ],
  });
});

afterAll(async () => {
  for (const server of Object.values(servers)) await server.close();
  await kit?.shutdown();
});

const viaFetch = async (url: string): Promise<IncomingHttpHeaders> => {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return (await response.json()) as IncomingHttpHeaders;
};

const viaNodeHttp = (url: string): Promise<IncomingHttpHeaders> =>
  new Promise((resolve, reject) => {
    httpRequest(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(JSON.parse(body) as IncomingHttpHeaders));
    })
      .on('error', reject)
      .end();
  });

/** Calls `url` inside a request and returns what the destination received. */
async function callInRequest(client: (url: string) => Promise<IncomingHttpHeaders>, url: string): Promise<{ seen: IncomingHttpHeaders; traceId: string; correlationId: string }> {
  return withRequestContext({ tenantId: 'acme', userId: 'alice', jobId: 'job-1' }, async (ctx) => ({
    seen: await client(url),
    traceId: ctx.traceId,
    correlationId: ctx.correlationId,
  }));
}

const cases: Array<{ what: string; url: () => string; baggage: boolean }> = [
  { what: 'host:port', url: () => `${servers.hostPort.origin}/stock`, baggage: true },
  { what: 'URL prefix, inside it', url: () => `${servers.prefix.origin}/allowed/items?q=1`, baggage: true },
  { what: 'URL prefix, outside it (other path)', url: () => `${servers.prefix.origin}/other`, baggage: false },
  { what: 'URL prefix, a longer path segment', url: () => `${servers.prefix.origin}/allowedX`, baggage: false },
  { what: 'URL prefix, a port that only starts like the allowed one', url: () => `${servers.lookalike.origin}/`, baggage: false },
  { what: 'RegExp, matching', url: () => `${servers.regex.origin}/re/1`, baggage: true },
  { what: 'RegExp, not matching', url: () => `${servers.regex.origin}/nope`, baggage: false },
  { what: 'predicate, true', url: () => `${servers.predicate.origin}/p?share=1`, baggage: true },
  { what: 'predicate, false', url: () => `${servers.predicate.origin}/p`, baggage: false },
  { what: 'predicate that throws (fails closed)', url: () => `${servers.throwing.origin}/`, baggage: false },
  { what: 'host name (any port)', url: () => `http://localhost:${servers.hostname.port}/`, baggage: true },
  { what: 'the same server by IP when only the host name is allowed', url: () => `${servers.hostname.origin}/`, baggage: false },
  { what: 'a server not in propagateTo', url: () => `${servers.unlisted.origin}/`, baggage: false },
];

describe.each([
  ['fetch', viaFetch],
  ['node:http', viaNodeHttp],
])('propagateTo through %s', (_client, client) => {
  it.each(cases)('$what → baggage: $baggage', async ({ url, baggage: expectBaggage }) => {
    const { seen, traceId, correlationId } = await callInRequest(client, url());
    expect(parseTraceHeader(seen.traceparent as string)?.traceId, 'traceparent goes everywhere').toBe(traceId);
    if (expectBaggage) {
      expect(seen.baggage).toBeDefined();
      const entries = new Map((seen.baggage as string).split(',').map((entry) => entry.trim().split('=') as [string, string]));
      expect(Object.fromEntries(entries)).toEqual({
        'isotrace.correlation_id': correlationId,
        'isotrace.tenant_id': 'acme',
        'isotrace.user_id': 'alice',
        'isotrace.job_id': 'job-1',
      });
    } else {
      expect(seen.baggage).toBeUndefined();
    }
  });

  it('a RegExp with the g flag matches on every call (no lastIndex state carried between calls)', async () => {
    for (let i = 0; i < 4; i++) {
      const { seen } = await callInRequest(client, `${servers.globalRegex.origin}/call-${i}`);
      expect(seen.baggage, `call ${i}`).toContain('isotrace.tenant_id=acme');
    }
  });
});
