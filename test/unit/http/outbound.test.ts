/**
 * Outbound HTTP from inside a request: node:http (default and named imports,
 * both loaded before isotrace started) and fetch each get a CLIENT span under
 * the active span, and the downstream server receives a traceparent that
 * names that span, with the sampled flag as decided. Outside a request the
 * traceparent still flows, without baggage.
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import http, { get as namedGet, request as namedRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestOptions } from 'node:http';
import { SpanKind, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { getRequestContext, withRequestContext } from 'isotrace';
import { httpRequestContext } from 'isotrace/http';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { listen, parseTraceHeader, rawRequest, recordingServer, waitFor, type RecordingServer, type TestServer } from '../../helpers/http.js';

let kit: TestTracing;
let downstream: RecordingServer;

type RequestFn = (url: string, options: RequestOptions, callback: (res: IncomingMessage) => void) => http.ClientRequest;

/** One GET through a node:http-style request function; resolves with the headers the downstream saw. */
function callWith(requestFn: RequestFn, url: string): Promise<IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const req = requestFn(url, { method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(JSON.parse(body) as IncomingHttpHeaders));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const clients: Array<[string, (url: string) => Promise<IncomingHttpHeaders>]> = [
  ['node:http default import (http.request)', (url) => callWith(http.request, url)],
  ['node:http default import (http.get)', (url) => callWith(http.get, url)],
  ['node:http named import (request)', (url) => callWith(namedRequest, url)],
  ['node:http named import (get)', (url) => callWith(namedGet, url)],
  ['fetch', async (url) => (await (await fetch(url)).json()) as IncomingHttpHeaders],
];

beforeAll(async () => {
  downstream = await recordingServer();
  kit = await setupTestTracing({ propagateTo: [`127.0.0.1:${downstream.port}`] });
});

afterAll(async () => {
  await downstream?.close();
  await kit?.shutdown();
});

beforeEach(() => {
  kit.reset();
});

function clientSpanWithId(spanId: string | undefined): Promise<ReadableSpan> {
  return waitFor(() => kit.spans().find((span) => span.kind === SpanKind.CLIENT && span.spanContext().spanId === spanId), `CLIENT span ${spanId}`);
}

describe.each(clients)('outbound %s', (_name, call) => {
  it('inside a request: a CLIENT span under the request span, named in the traceparent, with baggage to an allowed target', async () => {
    const { seen, requestSpanId, ctx } = await withRequestContext({ tenantId: 'acme', userId: 'alice' }, async (ctx) => ({
      seen: await call(`${downstream.origin}/stock?sku=1`),
      requestSpanId: trace.getActiveSpan()?.spanContext().spanId,
      ctx: { traceId: ctx.traceId, requestId: ctx.requestId, correlationId: ctx.correlationId },
    }));
    const traceparent = parseTraceHeader(seen.traceparent as string);
    expect(traceparent, `traceparent ${String(seen.traceparent)}`).toMatchObject({ version: '00', traceId: ctx.traceId, flags: '01' });
    const client = await clientSpanWithId(traceparent!.spanId);
    expect(client.spanContext().traceId).toBe(ctx.traceId);
    expect(client.parentSpanContext?.spanId).toBe(requestSpanId);
    expect(client.attributes['isotrace.request_id']).toBe(ctx.requestId);
    expect(client.attributes['isotrace.tenant_id']).toBe('acme');
    expect(seen.baggage).toContain('isotrace.tenant_id=acme');
    expect(seen.baggage).toContain('isotrace.user_id=alice');
    expect(seen.baggage).toContain(`isotrace.correlation_id=${ctx.correlationId}`);
  });

  it('parents the CLIENT span on the active span inside the request, not only the request span', async () => {
    const { seen, stepSpanId } = await withRequestContext({ tenantId: 'acme', userId: 'alice' }, () =>
      trace.getTracer('test').startActiveSpan('plan-step', async (step) => {
        try {
          return { seen: await call(`${downstream.origin}/stock`), stepSpanId: step.spanContext().spanId };
        } finally {
          step.end();
        }
      }),
    );
    const client = await clientSpanWithId(parseTraceHeader(seen.traceparent as string)?.spanId);
    expect(client.parentSpanContext?.spanId).toBe(stepSpanId);
  });

  it('outside any request: traceparent of a new sampled trace, no baggage', async () => {
    const seen = await call(`${downstream.origin}/stock`);
    const traceparent = parseTraceHeader(seen.traceparent as string);
    expect(traceparent?.flags).toBe('01');
    expect(seen.baggage).toBeUndefined();
    const client = await clientSpanWithId(traceparent?.spanId);
    expect(client.attributes['isotrace.request_id']).toBeUndefined();
  });
});

describe('outbound calls from an HTTP request', () => {
  let service: TestServer;

  beforeAll(async () => {
    service = await listen(
      httpRequestContext({ identify: () => ({ tenantId: 'acme', userId: 'alice' }) }, async (_req, res) => {
        const seen = (await (await fetch(`${downstream.origin}/stock`)).json()) as IncomingHttpHeaders;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ seen, traceId: getRequestContext().traceId }));
      }),
    );
  });

  afterAll(async () => {
    await service?.close();
  });

  it('are in the request’s trace, under its SERVER span', async () => {
    const response = await rawRequest(service.port, { path: '/' });
    const { seen, traceId } = response.json<{ seen: IncomingHttpHeaders; traceId: string }>();
    const traceparent = parseTraceHeader(seen.traceparent as string);
    expect(traceparent?.traceId).toBe(traceId);
    const client = await clientSpanWithId(traceparent?.spanId);
    expect(client.parentSpanContext?.spanId).toBe(parseTraceHeader(response.headers['traceresponse'])?.spanId);
  });

  it('carry the caller’s not-sampled decision (flags 00) in the same trace', async () => {
    const inbound = '0af7651916cd43dd8448eb211c80319c';
    const response = await rawRequest(service.port, { path: '/', headers: [['traceparent', `00-${inbound}-b7ad6b7169203331-00`]] });
    expect(response.status).toBe(200);
    const { seen, traceId } = response.json<{ seen: IncomingHttpHeaders; traceId: string }>();
    expect(traceId).toBe(inbound);
    expect(parseTraceHeader(seen.traceparent as string)).toMatchObject({ traceId: inbound, flags: '00' });
  });
});
