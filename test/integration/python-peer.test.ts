/**
 * Smoke test of the Python interop peer on its own (no isotrace): proves the
 * official OpenTelemetry Python propagators extract and inject W3C trace
 * context and baggage the way the interop tests rely on.
 */
import { describe, it, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { usePythonPeer, type PythonPeer } from '../helpers/python-peer.js';

interface EchoContextReply {
  traceId: string | null;
  parentSpanId: string | null;
  sampled: boolean;
  baggage: Record<string, string>;
  serverSpanTraceId: string;
  headers: Record<string, string>;
}

interface CallReply {
  traceId: string;
  spanId: string;
  sentHeaders: Record<string, string>;
  status: number;
  body: unknown;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const pythonPeer = usePythonPeer('Python peer');
const peerOrSkip = pythonPeer.orSkip;

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

async function echoContext(target: PythonPeer, headers: Record<string, string>): Promise<EchoContextReply> {
  const response = await fetch(`${target.url}/echo-context`, { headers });
  expect(response.status).toBe(200);
  return (await response.json()) as EchoContextReply;
}

describe('Python interop peer (official OpenTelemetry Python SDK)', () => {
  it('answers /health', async (context) => {
    const response = await fetch(`${peerOrSkip(context).url}/health`);
    expect(response.status).toBe(200);
  });

  it('extracts a valid sampled traceparent and the baggage entries, decoding percent-encoded values', async (context) => {
    const traceId = hex(16);
    const parentSpanId = hex(8);
    const traceparent = `00-${traceId}-${parentSpanId}-01`;

    const reply = await echoContext(peerOrSkip(context), {
      traceparent,
      baggage: 'tenant=acme, note=hello%20world%2C%20100%25,empty=',
    });

    expect(reply.traceId).toBe(traceId);
    expect(reply.parentSpanId).toBe(parentSpanId);
    expect(reply.sampled).toBe(true);
    expect(reply.baggage).toEqual({ tenant: 'acme', note: 'hello world, 100%', empty: '' });
    expect(reply.serverSpanTraceId).toBe(traceId);
    expect(reply.headers.traceparent).toBe(traceparent);
  });

  // Unlike OpenTelemetry JS, which moves `;prop` into the entry's metadata, the
  // Python SDK keeps properties in the value: interop tests must expect this.
  it('keeps baggage properties as part of the value', async (context) => {
    const reply = await echoContext(peerOrSkip(context), { baggage: 'tenant=acme;region=eu' });

    expect(reply.baggage).toEqual({ tenant: 'acme;region=eu' });
  });

  it('reports an unsampled parent as sampled: false', async (context) => {
    const traceId = hex(16);
    const reply = await echoContext(peerOrSkip(context), { traceparent: `00-${traceId}-${hex(8)}-00` });

    expect(reply.traceId).toBe(traceId);
    expect(reply.sampled).toBe(false);
  });

  it.for([
    { problem: 'version ff', traceparent: `ff-${hex(16)}-${hex(8)}-01` },
    { problem: 'an all-zero trace id', traceparent: `00-${'0'.repeat(32)}-${hex(8)}-01` },
    { problem: 'an all-zero parent span id', traceparent: `00-${hex(16)}-${'0'.repeat(16)}-01` },
  ])('does not extract a traceparent with $problem, and starts a new trace instead', async ({ traceparent }, context) => {
    const reply = await echoContext(peerOrSkip(context), { traceparent });

    expect(reply.traceId).toBeNull();
    expect(reply.parentSpanId).toBeNull();
    expect(reply.sampled).toBe(false);
    expect(reply.serverSpanTraceId).toMatch(/^[0-9a-f]{32}$/);
    expect(traceparent).not.toContain(reply.serverSpanTraceId);
  });

  it('POST /call injects a new sampled traceparent and the given baggage into its outbound request', async (context) => {
    const target = peerOrSkip(context);
    const received: IncomingHttpHeaders[] = [];
    const downstream = createServer((request, response) => {
      received.push(request.headers);
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ downstream: 'ok' }));
    });
    downstream.listen(0, '127.0.0.1');
    await once(downstream, 'listening');
    const { port } = downstream.address() as AddressInfo;

    try {
      const response = await fetch(`${target.url}/call`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          url: `http://127.0.0.1:${port}/downstream`,
          baggage: { tenant: 'acme', path: 'a/b=c' },
          method: 'GET',
        }),
      });
      expect(response.status).toBe(200);
      const reply = (await response.json()) as CallReply;

      expect(received).toHaveLength(1);
      const headers = received[0] ?? {};
      const traceparent = TRACEPARENT.exec(String(headers.traceparent));
      expect(traceparent, `received traceparent ${String(headers.traceparent)}`).not.toBeNull();
      const [, traceId, spanId, flags] = traceparent ?? [];
      expect(traceId).toBe(reply.traceId);
      expect(spanId).toBe(reply.spanId);
      expect(traceId).not.toBe('0'.repeat(32));
      expect(Number.parseInt(flags ?? '0', 16) & 1).toBe(1);
      expect(reply.sentHeaders.traceparent).toBe(headers.traceparent);

      expect(parseBaggage(String(headers.baggage))).toEqual({ tenant: 'acme', path: 'a/b=c' });
      expect(reply.status).toBe(200);
      expect(reply.body).toEqual({ downstream: 'ok' });
    } finally {
      downstream.closeAllConnections();
      downstream.close();
    }
  });
});

function parseBaggage(header: string): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const member of header.split(',')) {
    const [pair = ''] = member.split(';');
    const separator = pair.indexOf('=');
    entries[decodeURIComponent(pair.slice(0, separator).trim())] = decodeURIComponent(pair.slice(separator + 1).trim());
  }
  return entries;
}
