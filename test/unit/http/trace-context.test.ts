/**
 * W3C Trace Context on inbound requests: a valid traceparent is continued
 * (trace id, parent id, sampled flag, tracestate); an invalid one starts a
 * fresh trace and the request still succeeds; an oversized tracestate is
 * trimmed to the spec's limits. Headers are sent with a raw client so they
 * arrive exactly as written.
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { SpanKind, TraceFlags } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { getRequestContext } from 'isotrace';
import { httpRequestContext } from 'isotrace/http';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { listen, parseTraceHeader, rawRequest, waitFor, type RawResponse, type TestServer } from '../../helpers/http.js';

let kit: TestTracing;
let server: TestServer;

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

beforeAll(async () => {
  kit = await setupTestTracing();
  server = await listen(
    httpRequestContext({ identify: () => ({ tenantId: 'acme', userId: 'u1' }) }, (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ traceId: getRequestContext().traceId }));
    }),
  );
});

afterAll(async () => {
  await server?.close();
  await kit?.shutdown();
});

beforeEach(() => {
  kit.reset();
});

function send(headers: ReadonlyArray<readonly [string, string]>): Promise<RawResponse> {
  return rawRequest(server.port, { path: '/', headers });
}

function serverSpanFor(response: RawResponse): Promise<ReadableSpan> {
  const requestId = response.headers['x-request-id'];
  expect(requestId, 'x-request-id').toBeTruthy();
  return waitFor(
    () => kit.spans().find((span) => span.kind === SpanKind.SERVER && span.attributes['isotrace.request_id'] === requestId),
    `SERVER span of ${requestId}`,
  );
}

describe('a valid inbound traceparent', () => {
  it('is continued: same trace id, the inbound id as remote parent, sampled flag kept', async () => {
    const response = await send([['traceparent', `00-${TRACE_ID}-${PARENT_ID}-01`]]);
    expect(response.status).toBe(200);
    const span = await serverSpanFor(response);
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(span.parentSpanContext?.spanId).toBe(PARENT_ID);
    expect(span.parentSpanContext?.isRemote).toBe(true);
    expect(response.json()).toEqual({ traceId: TRACE_ID });
    expect(parseTraceHeader(response.headers['traceresponse'])).toEqual({ version: '00', traceId: TRACE_ID, spanId: span.spanContext().spanId, flags: '01' });
  });

  it('with flags 00 is continued but not sampled: the span is unsampled (never exported) and traceresponse says 00', async () => {
    const unsampled = await send([['traceparent', `00-${TRACE_ID}-${PARENT_ID}-00`]]);
    expect(unsampled.status).toBe(200);
    expect(unsampled.json()).toEqual({ traceId: TRACE_ID });
    const echoed = parseTraceHeader(unsampled.headers['traceresponse']);
    expect(echoed).toMatchObject({ traceId: TRACE_ID, flags: '00' });
    expect(echoed?.spanId).not.toBe(PARENT_ID);
    // The kit records unsampled spans too (it audits them); the exporter only gets sampled ones.
    const span = await serverSpanFor(unsampled);
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(span.spanContext().traceFlags & TraceFlags.SAMPLED).toBe(0);
  });

  it('keeps the inbound tracestate on the span', async () => {
    const response = await send([
      ['traceparent', `00-${TRACE_ID}-${PARENT_ID}-01`],
      ['tracestate', 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'],
    ]);
    const span = await serverSpanFor(response);
    expect(span.spanContext().traceState?.serialize()).toBe('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
  });

  it('of a higher version with extra fields is read by its first four fields, as the spec says', async () => {
    const response = await send([['traceparent', `cc-${TRACE_ID}-${PARENT_ID}-01-what-the-future-holds`]]);
    expect(response.status).toBe(200);
    const span = await serverSpanFor(response);
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(span.parentSpanContext?.spanId).toBe(PARENT_ID);
  });
});

describe('an invalid inbound traceparent starts a fresh trace, and the request succeeds', () => {
  const cases: Array<[string, Array<[string, string]>]> = [
    ['version ff', [['traceparent', `ff-${TRACE_ID}-${PARENT_ID}-01`]]],
    ['all-zero trace id', [['traceparent', `00-${'0'.repeat(32)}-${PARENT_ID}-01`]]],
    ['all-zero parent id', [['traceparent', `00-${TRACE_ID}-${'0'.repeat(16)}-01`]]],
    ['a short trace id', [['traceparent', `00-${TRACE_ID.slice(1)}-${PARENT_ID}-01`]]],
    ['a long parent id', [['traceparent', `00-${TRACE_ID}-${PARENT_ID}a-01`]]],
    ['a one-digit flags field', [['traceparent', `00-${TRACE_ID}-${PARENT_ID}-1`]]],
    ['uppercase hex', [['traceparent', `00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01`]]],
    ['version 00 with an extra field', [['traceparent', `00-${TRACE_ID}-${PARENT_ID}-01-extra`]]],
    ['non-hex characters', [['traceparent', `00-${TRACE_ID.slice(0, 31)}g-${PARENT_ID}-01`]]],
    ['garbage', [['traceparent', 'hello, world']]],
    ['an empty value', [['traceparent', '']]],
    [
      'two traceparent headers',
      [
        ['traceparent', `00-${TRACE_ID}-${PARENT_ID}-01`],
        ['traceparent', `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`],
      ],
    ],
  ];

  it.each(cases)('%s', async (_what, headers) => {
    const response = await send([...headers, ['tracestate', 'congo=t61rcWkgMzE']]);
    expect(response.status).toBe(200);
    const span = await serverSpanFor(response);
    const { traceId } = span.spanContext();
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect([TRACE_ID, TRACE_ID.toUpperCase(), '1'.repeat(32)]).not.toContain(traceId);
    expect(span.parentSpanContext).toBeUndefined();
    // tracestate without a valid traceparent is not kept either.
    expect(span.spanContext().traceState?.serialize() ?? '').toBe('');
    expect(response.json()).toEqual({ traceId });
    expect(parseTraceHeader(response.headers['traceresponse'])?.traceId).toBe(traceId);
  });
});

describe('an oversized tracestate is trimmed per W3C, without an error', () => {
  const traceparent: [string, string] = ['traceparent', `00-${TRACE_ID}-${PARENT_ID}-01`];

  it('keeps at most 32 list members, the first ones', async () => {
    const members = Array.from({ length: 40 }, (_, i) => `v${i}=x${i}`);
    const response = await send([traceparent, ['tracestate', members.join(',')]]);
    expect(response.status).toBe(200);
    const span = await serverSpanFor(response);
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    const kept = span.spanContext().traceState?.serialize().split(',') ?? [];
    expect(kept).toHaveLength(32);
    expect(kept).toEqual(members.slice(0, 32));
  });

  it('keeps at most 512 characters, dropping whole members', async () => {
    const members = Array.from({ length: 12 }, (_, i) => `vendor${i}=${String(i).padStart(50, 'y')}`);
    expect(members.join(',').length).toBeGreaterThan(512);
    const response = await send([traceparent, ['tracestate', members.join(',')]]);
    expect(response.status).toBe(200);
    const span = await serverSpanFor(response);
    const serialized = span.spanContext().traceState?.serialize() ?? '';
    expect(serialized.length).toBeLessThanOrEqual(512);
    expect(serialized.length).toBeGreaterThan(0);
    for (const member of serialized.split(',')) expect(members).toContain(member);
  });

  it('drops a single member longer than the whole limit', async () => {
    const response = await send([traceparent, ['tracestate', `big=${'z'.repeat(600)}`]]);
    expect(response.status).toBe(200);
    const span = await serverSpanFor(response);
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(span.spanContext().traceState?.serialize() ?? '').toBe('');
  });
});
