/**
 * The inventory service: the downstream service the agent's `inventory_lookup`
 * tool calls. Every request runs in its own isotrace request context whose
 * identity comes from identify() — a signed service token the agent sends —
 * never from the W3C baggage that arrives with it. What baggage said is
 * recorded next to it in `seen`, so tests (and the demo) can show what
 * crossed the wire.
 *
 * This module never starts tracing: main.ts does, or the process that embeds it.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { getRequestContext } from 'isotrace';
import { httpRequestContext, type Identity } from 'isotrace/http';
import { isItem, ITEMS } from '../shared/catalogue.ts';
import { closeServer, listen, sendJson } from '../shared/http.ts';
import { defaultServiceSecret, SERVICE_TOKEN_HEADER, verifyServiceToken } from '../shared/service-token.ts';

/** What one request saw: its identity (from identify()) and what the caller's headers said. */
export interface SeenRequest {
  path: string;
  tenantId: string;
  userId: string;
  correlationId: string;
  traceId: string;
  /** The caller's span id from `traceparent`, when this request continued the caller's trace. */
  parentSpanId: string | undefined;
  /** The raw inbound `baggage` header, undefined when none arrived. */
  baggage: string | undefined;
}

/** Options of createInventoryService(). */
export interface InventoryServiceOptions {
  /** Default 0: a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /**
   * Whether a caller may send baggage that this service keeps (e.g. peers on
   * the private network). Default: nobody. Identity never comes from baggage either way.
   */
  trustInbound?: boolean | ((req: IncomingMessage) => boolean);
  /** The service-token secret shared with the agent service; default SERVICE_TOKEN_SECRET or a demo value. */
  serviceSecret?: string;
  /** How many `seen` records to keep (oldest dropped first); default 10,000. */
  maxSeen?: number;
}

/** A running inventory service. */
export interface InventoryService {
  readonly url: string;
  /** What each request saw, oldest first. */
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

const WAREHOUSES = ['north', 'south', 'east', 'west'] as const;

/** Starts the inventory service (in this process; call startTracing() first). */
export async function createInventoryService(options: InventoryServiceOptions = {}): Promise<InventoryService> {
  const secret = options.serviceSecret ?? defaultServiceSecret();
  const maxSeen = options.maxSeen ?? 10_000;
  const trust = options.trustInbound;
  const seen: SeenRequest[] = [];

  const handle = httpRequestContext(
    {
      identify: (req): Identity | undefined => verifyServiceToken(req.headers[SERVICE_TOKEN_HEADER], secret),
      trustInbound: (req) => (typeof trust === 'function' ? trust(req) : trust === true),
      // `{method} {route}` for the one route; other paths keep the bare method (no unbounded span names).
      name: (req) => (req.url?.split('?')[0] === '/stock' ? `${req.method ?? 'GET'} /stock` : (req.method ?? 'HTTP')),
    },
    async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://inventory');
      record(seen, maxSeen, req, url.pathname);
      if (req.method === 'GET' && url.pathname === '/stock') return answerStock(res, url.searchParams.get('item'));
      sendJson(res, 404, { error: `no route for ${req.method} ${url.pathname}` });
    },
  );
  const server = createServer((req, res) => {
    // Health checks carry no service token and need no request context.
    if (req.url === '/health') return sendJson(res, 200, { status: 'ok' });
    handle(req, res);
  });
  const url = await listen(server, options.port ?? 0, options.host ?? '127.0.0.1');
  return { url, seen, close: () => closeServer(server) };
}

async function answerStock(res: ServerResponse, item: string | null): Promise<void> {
  if (!isItem(item)) {
    sendJson(res, 400, { error: `unknown item ${JSON.stringify(item)}; known: ${ITEMS.join(', ')}` });
    return;
  }
  const { tenantId } = getRequestContext();
  // A pretend database round trip, so concurrent requests interleave.
  await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
  sendJson(res, 200, { tenantId, item, ...stockOf(tenantId, item) });
}

/** Each tenant has its own (made-up, stable) stock. */
function stockOf(tenantId: string, item: string): { quantity: number; warehouse: string } {
  const digest = createHash('sha256').update(`${tenantId}\u0000${item}`).digest();
  return { quantity: digest.readUInt16BE(0) % 500, warehouse: WAREHOUSES[digest[2]! % WAREHOUSES.length]! };
}

function record(seen: SeenRequest[], maxSeen: number, req: IncomingMessage, path: string): void {
  const ctx = getRequestContext();
  const baggage = req.headers.baggage;
  seen.push({
    path,
    tenantId: ctx.tenantId,
    userId: ctx.userId,
    correlationId: ctx.correlationId,
    traceId: ctx.traceId,
    parentSpanId: callerSpanId(req.headers.traceparent, ctx.traceId),
    baggage: Array.isArray(baggage) ? baggage.join(',') : baggage,
  });
  if (seen.length > maxSeen) seen.splice(0, seen.length - maxSeen);
}

/** The parent span id from `traceparent`, if the request's trace is the one it names. */
function callerSpanId(traceparent: string | string[] | undefined, traceId: string): string | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const [, callerTraceId, spanId] = traceparent.split('-');
  return callerTraceId === traceId ? spanId : undefined;
}
