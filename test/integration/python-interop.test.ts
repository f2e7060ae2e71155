/**
 * Interop with another OpenTelemetry SDK: the Python peer
 * (test/fixtures/python-peer/peer.py) uses the official OpenTelemetry Python
 * SDK and its own W3C propagators.
 *
 * isotrace → Python: the peer extracts exactly our trace id, our CLIENT span
 * as parent, the sampled flag and our baggage — baggage only when the peer's
 * host is in propagateTo.
 *
 * Python → isotrace: an httpRequestContext() SERVER span continues the peer's
 * trace. Identity always comes from identify(). The correlation id: a valid
 * one in the peer's baggage is accepted whether or not the peer is trusted
 * (httpRequestContext reads `isotrace.correlation_id` from baggage even for
 * untrusted peers, after validating it); everything else in the baggage is
 * kept only for trusted peers.
 *
 * Two cross-SDK details these tests pin down:
 *  - the Python SDK sends trace flags 03 (sampled + W3C Level 2 random-trace-id);
 *    sampled is bit 0 and must still be honoured.
 *  - Python writes baggage values with quote_plus (space → '+') and reads them
 *    with unquote_plus. W3C baggage is percent-encoding only, so OpenTelemetry JS
 *    (and isotrace) reads '+' as a literal '+'. The other direction is exact:
 *    JS percent-encodes both space and '+'.
 *
 * With CI=true the peer must start (the helper throws instead of offering a skip).
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRequestContext, withRequestContext } from 'isotrace';
import { httpRequestContext } from 'isotrace/http';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { waitFor } from '../helpers/http.ts';
import { usePythonPeer, type PythonPeer } from '../helpers/python-peer.ts';

interface EchoContextReply {
  traceId: string | null;
  parentSpanId: string | null;
  sampled: boolean;
  baggage: Record<string, string>;
  headers: Record<string, string>;
}

/** What our service reports about the request the peer made. */
interface SeenByIsotrace {
  requestId: string;
  correlationId: string;
  tenantId: string;
  userId: string;
  traceId: string;
  spanId: string;
  baggage: Record<string, string>;
}

interface CallReply {
  traceId: string;
  spanId: string;
  sentHeaders: Record<string, string>;
  status: number;
  body: SeenByIsotrace;
}

const pythonPeer = usePythonPeer('Python interop');
const peerOrSkip = pythonPeer.orSkip;

/** Starts tracing for one describe block; `propagateTo` may depend on the peer's address. */
function tracingFor(propagateTo: (peer: PythonPeer | undefined) => string[]): { kit: () => TestTracing } {
  let kit: TestTracing | undefined;
  beforeAll(async () => {
    kit = await setupTestTracing({ serviceName: 'isotrace-python-interop', propagateTo: propagateTo(pythonPeer.current()) });
  });
  afterAll(async () => {
    await kit?.shutdown();
  });
  return { kit: () => kit! };
}

/** Our CLIENT span of the call to `url` in `traceId` (it ends when the response body is done). */
function clientSpanOf(kit: TestTracing, traceId: string, url: string): Promise<ReadableSpan> {
  return waitFor(
    () => kit.spans().find((span) => span.kind === SpanKind.CLIENT && span.spanContext().traceId === traceId && span.attributes['url.full'] === url),
    `the CLIENT span of GET ${url}`,
  );
}

async function echoFromRequest(target: PythonPeer, init: Parameters<typeof withRequestContext>[0]): Promise<{ reply: EchoContextReply; traceId: string; correlationId: string }> {
  return withRequestContext(init, async (ctx) => {
    const response = await fetch(`${target.url}/echo-context`);
    expect(response.status).toBe(200);
    return { reply: (await response.json()) as EchoContextReply, traceId: ctx.traceId, correlationId: ctx.correlationId };
  });
}

describe('isotrace → Python peer, peer host in propagateTo', () => {
  const { kit } = tracingFor((p) => (p ? [new URL(p.url).host] : []));

  it('the peer extracts our trace id, our CLIENT span as parent, sampled, and our identity baggage', async (ctx) => {
    const target = peerOrSkip(ctx);
    const { reply, traceId, correlationId } = await echoFromRequest(target, { tenantId: 'acme', userId: 'ada', correlationId: 'corr-to-python-1' });
    const client = await clientSpanOf(kit(), traceId, `${target.url}/echo-context`);

    expect(reply.traceId).toBe(traceId);
    expect(reply.parentSpanId).toBe(client.spanContext().spanId);
    expect(reply.sampled).toBe(true);
    expect(reply.baggage).toEqual({
      'isotrace.correlation_id': correlationId,
      'isotrace.tenant_id': 'acme',
      'isotrace.user_id': 'ada',
    });
    expect(correlationId).toBe('corr-to-python-1');
  });

  it('values with spaces, plus signs and other reserved characters reach Python unchanged', async (ctx) => {
    const target = peerOrSkip(ctx);
    // JS percent-encodes ' ' and '+' alike, so Python's unquote_plus decodes both correctly.
    const { reply } = await echoFromRequest(target, { tenantId: 'Acme Corp', userId: 'ann+1@example.com', correlationId: 'c-2' });

    expect(reply.baggage['isotrace.tenant_id']).toBe('Acme Corp');
    expect(reply.baggage['isotrace.user_id']).toBe('ann+1@example.com');
  });
});

describe('isotrace → Python peer, peer host not in propagateTo', () => {
  const { kit } = tracingFor(() => ['inventory.internal']);

  it('the peer sees the same trace (traceparent) but no baggage at all', async (ctx) => {
    const target = peerOrSkip(ctx);
    const { reply, traceId } = await echoFromRequest(target, { tenantId: 'acme', userId: 'ada', correlationId: 'corr-to-python-2' });
    const client = await clientSpanOf(kit(), traceId, `${target.url}/echo-context`);

    expect(reply.traceId).toBe(traceId);
    expect(reply.parentSpanId).toBe(client.spanContext().spanId);
    expect(reply.sampled).toBe(true);
    expect(reply.baggage).toEqual({});
    expect(reply.headers.baggage).toBeUndefined();
  });
});

describe('Python peer → isotrace service (httpRequestContext)', () => {
  const { kit } = tracingFor(() => []);
  let trusted: Server;
  let untrusted: Server;

  /** An isotrace service whose auth says every caller is acme/py-service, and which reports what its request saw. */
  async function startService(trustInbound: boolean): Promise<Server> {
    const server = createServer(
      httpRequestContext({ identify: () => ({ tenantId: 'acme', userId: 'py-service' }), trustInbound: () => trustInbound }, (_req, res) => {
        const ctx = getRequestContext();
        const spanContext = trace.getActiveSpan()!.spanContext();
        const baggage = Object.fromEntries((propagation.getBaggage(context.active())?.getAllEntries() ?? []).map(([key, entry]) => [key, entry.value]));
        const seen: SeenByIsotrace = { ...pick(ctx), traceId: spanContext.traceId, spanId: spanContext.spanId, baggage };
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(seen));
      }),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return server;
  }

  beforeAll(async () => {
    trusted = await startService(true);
    untrusted = await startService(false);
  });
  afterAll(async () => {
    for (const server of [trusted, untrusted]) {
      server?.closeAllConnections();
      server?.close();
    }
  });

  async function callFromPython(target: PythonPeer, server: Server, baggage: Record<string, string>): Promise<CallReply> {
    const { port } = server.address() as AddressInfo;
    const response = await fetch(`${target.url}/call`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: `http://127.0.0.1:${port}/from-python`, method: 'GET', baggage }),
    });
    expect(response.status).toBe(200);
    const reply = (await response.json()) as CallReply;
    expect(reply.status).toBe(200);
    return reply;
  }

  /** The SERVER span isotrace made for the peer's call. */
  function serverSpanOf(traceId: string): Promise<ReadableSpan> {
    return waitFor(() => kit().spans().find((span) => span.kind === SpanKind.SERVER && span.spanContext().traceId === traceId), `the SERVER span in trace ${traceId}`);
  }

  const forged = { 'isotrace.correlation_id': 'py-corr-1', 'isotrace.tenant_id': 'victim', 'isotrace.user_id': 'mallory', note: 'hello world' };

  it('continues the peer trace, though Python sends trace flags 03: sampled is bit 0', async (ctx) => {
    const reply = await callFromPython(peerOrSkip(ctx), untrusted, {});
    const span = await serverSpanOf(reply.traceId);

    // opentelemetry-sdk 1.45 (pinned) marks its random trace ids: 0x02 on top of sampled 0x01.
    expect(reply.sentHeaders.traceparent!.split('-')[3]).toBe('03');
    expect(span.spanContext().traceId).toBe(reply.traceId);
    expect(span.parentSpanContext?.spanId).toBe(reply.spanId);
    expect(span.spanContext().traceFlags & 0x01).toBe(1);
    expect(reply.body.traceId).toBe(reply.traceId);
  });

  it('trusted peer: its correlation id and other baggage are kept; the tenant and user are the identified ones, never "victim"', async (ctx) => {
    const reply = await callFromPython(peerOrSkip(ctx), trusted, forged);
    const span = await serverSpanOf(reply.traceId);

    expect(span.parentSpanContext?.spanId).toBe(reply.spanId);
    expect(reply.body).toMatchObject({ correlationId: 'py-corr-1', tenantId: 'acme', userId: 'py-service', traceId: reply.traceId });
    expect(span.attributes).toMatchObject({ 'isotrace.correlation_id': 'py-corr-1', 'isotrace.tenant_id': 'acme', 'user.id': 'py-service' });
    // The identity entries are rewritten to the identified request; the rest of a trusted peer's baggage stays.
    // Python's quote_plus sent 'hello world' as 'hello+world', which W3C baggage (and OpenTelemetry JS) reads literally.
    expect(reply.sentHeaders.baggage).toContain('note=hello+world');
    expect(reply.body.baggage).toEqual({ 'isotrace.correlation_id': 'py-corr-1', 'isotrace.tenant_id': 'acme', 'isotrace.user_id': 'py-service', note: 'hello+world' });
  });

  it('untrusted peer: a valid correlation id from its baggage is still accepted; the rest of its baggage is dropped', async (ctx) => {
    const reply = await callFromPython(peerOrSkip(ctx), untrusted, forged);
    const span = await serverSpanOf(reply.traceId);

    expect(span.parentSpanContext?.spanId).toBe(reply.spanId);
    expect(reply.body).toMatchObject({ correlationId: 'py-corr-1', tenantId: 'acme', userId: 'py-service' });
    expect(reply.body.baggage).toEqual({ 'isotrace.correlation_id': 'py-corr-1', 'isotrace.tenant_id': 'acme', 'isotrace.user_id': 'py-service' });
    expect(span.attributes['isotrace.tenant_id']).toBe('acme');
  });

  it.for([
    { trust: 'trusted', pick: () => trusted },
    { trust: 'untrusted', pick: () => untrusted },
  ])('$trust peer: an invalid correlation id (Python sends "bad id" as "bad+id") is replaced by the request id', async ({ pick: server }, ctx) => {
    const reply = await callFromPython(peerOrSkip(ctx), server(), { 'isotrace.correlation_id': 'bad id', 'isotrace.tenant_id': 'victim' });

    expect(reply.sentHeaders.baggage).toContain('isotrace.correlation_id=bad+id');
    expect(reply.body.correlationId).toBe(reply.body.requestId);
    expect(reply.body.tenantId).toBe('acme');
  });
});

function pick(ctx: ReturnType<typeof getRequestContext>): Pick<SeenByIsotrace, 'requestId' | 'correlationId' | 'tenantId' | 'userId'> {
  return { requestId: ctx.requestId, correlationId: ctx.correlationId, tenantId: ctx.tenantId, userId: ctx.userId };
}
