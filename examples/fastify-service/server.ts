/**
 * A Fastify service with isotrace. Every request under `/api` runs in its own
 * request context (the isotrace Fastify plugin) with its own tool system:
 * `GET /api/stock/:item` runs the `stock_lookup` tool and counts the user's
 * lookups in SharedState. `GET /health` lives outside `/api`, so it needs no
 * identity and makes no request span.
 *
 * This module never starts tracing: main.ts does, or the process that embeds
 * it (a test).
 */
import { createHash } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { getRequestContext, getSharedState } from 'isotrace';
import { isotracePlugin, type Identity } from 'isotrace/fastify';
import { createToolSystem, Tool } from 'isotrace/tools';
import { isItem, ITEMS, type Item } from '../shared/catalogue.ts';

/** What `stock_lookup` answers. */
export interface StockAnswer {
  tenantId: string;
  item: Item;
  quantity: number;
}

/** The reply of `GET /api/stock/:item`. */
export interface StockReply {
  stock: StockAnswer;
  /** How many lookups this user made so far (SharedState, per tenant and user). */
  lookups: number;
  requestId: string;
  traceId: string;
}

/** Options of createFastifyService(). */
export interface FastifyServiceOptions {
  /** Default 0: a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
}

/** A running Fastify service. */
export interface FastifyService {
  /** e.g. http://127.0.0.1:8082 */
  readonly url: string;
  close(): Promise<void>;
}

const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

class StockLookup extends Tool<{ item: Item }, StockAnswer> {
  static override toolName = 'stock_lookup';
  static override description = "Looks up how many of an item the caller's tenant has in stock.";

  async run({ item }: { item: Item }): Promise<StockAnswer> {
    const { tenantId } = this.context;
    return { tenantId, item, quantity: stockOf(tenantId, item) };
  }
}

/** Starts the service (in this process; call startTracing() first). */
export async function createFastifyService(options: FastifyServiceOptions = {}): Promise<FastifyService> {
  const app = Fastify();
  app.get('/health', async () => ({ status: 'ok' }));
  await app.register(api, { prefix: '/api' });
  const url = await app.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
  return { url, close: () => app.close() };
}

/** The `/api` scope: the plugin applies to this scope and everything registered in it. */
async function api(scope: FastifyInstance): Promise<void> {
  await scope.register(isotracePlugin, { identify: identifyFromHeaders });
  scope.get<{ Params: { item: string } }>('/stock/:item', async (request, reply) => {
    if (!isItem(request.params.item)) return reply.code(404).send({ error: `unknown item; try one of ${ITEMS.join(', ')}` });
    // A fresh tool system per request: no tool instance is shared between users.
    const { dispatcher } = createToolSystem([StockLookup]);
    const stock = await dispatcher.execute<StockAnswer>('stock_lookup', { item: request.params.item });
    const state = getSharedState();
    const lookups = ((await state.get<number>('lookups')) ?? 0) + 1;
    await state.set('lookups', lookups);
    const ctx = getRequestContext(); // the same object as request.isotrace
    return { stock, lookups, requestId: ctx.requestId, traceId: ctx.traceId } satisfies StockReply;
  });
}

/**
 * Stands in for real authentication: the `x-tenant-id` and `x-user-id`
 * headers. A real service verifies a session or token here.
 */
function identifyFromHeaders(request: FastifyRequest): Identity | undefined {
  const tenantId = request.headers['x-tenant-id'];
  const userId = request.headers['x-user-id'];
  if (typeof tenantId !== 'string' || typeof userId !== 'string') return undefined;
  return ID_PATTERN.test(tenantId) && ID_PATTERN.test(userId) ? { tenantId, userId } : undefined;
}

/** A made-up but stable stock level per tenant and item. */
function stockOf(tenantId: string, item: Item): number {
  return createHash('sha256').update(`${tenantId}:${item}`).digest()[0]! % 50;
}
