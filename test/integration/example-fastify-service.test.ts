/**
 * examples/fastify-service as its server.ts builds it: each /api request runs
 * in its own request context with its own tool system, the tool's span sits
 * under the request's SERVER span, SharedState counts per tenant and user,
 * and /health needs no identity.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { SpanKind } from '@opentelemetry/api';
import { expectNoCrossRequestLeakage } from 'isotrace/testing';
import { createFastifyService, type FastifyService, type StockReply } from '../../examples/fastify-service/server.ts';
import { rawRequest, waitFor } from '../helpers/http.js';
import { useTestTracing } from '../helpers/tracing.js';

const kit = useTestTracing();
let service: FastifyService;
let port: number;

beforeAll(async () => {
  service = await createFastifyService();
  port = Number(new URL(service.url).port);
});

afterAll(async () => {
  await service?.close();
});

const as = (tenant: string, user: string): Array<[string, string]> => [
  ['x-tenant-id', tenant],
  ['x-user-id', user],
];

describe('examples/fastify-service', () => {
  it('runs the stock_lookup tool inside each request, under its SERVER span, with SharedState per user', async () => {
    const who = [as('acme', 'ada'), as('globex', 'grace'), as('acme', 'ada'), as('acme', 'alan')];
    const replies = await Promise.all(who.map((headers) => rawRequest(port, { path: '/api/stock/lamp', headers })));
    const bodies = replies.map((reply) => reply.json<StockReply>());
    expect(bodies.map((body) => body.stock.tenantId)).toEqual(['acme', 'globex', 'acme', 'acme']);
    expect(bodies.map((body) => body.lookups).sort()).toEqual([1, 1, 1, 2]);
    await waitFor(() => kit.spans().filter((span) => span.kind === SpanKind.SERVER).length === who.length, 'all SERVER spans');
    for (const body of bodies) {
      const server = kit.spans().find((span) => span.kind === SpanKind.SERVER && span.attributes['isotrace.request_id'] === body.requestId);
      expect(server?.name).toBe('GET /api/stock/:item');
      const tool = kit.spans().find((span) => span.name === 'execute_tool stock_lookup' && span.attributes['isotrace.request_id'] === body.requestId);
      expect(tool?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    }
    expectNoCrossRequestLeakage(kit.spans());
  });

  it('refuses /api without identity and serves /health without a request span', async () => {
    expect((await rawRequest(port, { path: '/api/stock/lamp' })).status).toBe(401);
    const health = await rawRequest(port, { path: '/health' });
    expect(health.json()).toEqual({ status: 'ok' });
    expect(health.headers['x-request-id']).toBeUndefined();
  });
});
