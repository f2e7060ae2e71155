import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestContextInit } from '../context/types.js';

/** Who a request is for, as your authentication decides it. */
export type Identity = Pick<RequestContextInit, 'tenantId' | 'userId' | 'jobId' | 'values' | 'conversationId'>;

/** Options of httpRequestContext(). */
export interface HttpRequestContextOptions<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> {
  /** Your auth: the tenant and user of this request, or undefined to refuse it. Never read from inbound baggage. */
  identify(req: Req): Identity | undefined | Promise<Identity | undefined>;
  /**
   * Whether the peer is trusted to send baggage (e.g. an internal caller on a
   * private network with mTLS, or your own reverse proxy). Default: nobody.
   * Untrusted baggage is dropped; only a valid correlation id is taken from it.
   * A trusted peer's `X-Forwarded-Proto` and `X-Forwarded-Host` also give the
   * span's `url.scheme`, `server.address` and `server.port`.
   */
  trustInbound?(req: Req): boolean;
  /**
   * The SERVER span's name. Default, as the HTTP semantic conventions say: the
   * method and route (`GET /api/items/:id`) when an Express-style router
   * dispatched the request to a route, else the method alone (`GET`).
   */
  name?: string | ((req: Req) => string);
  /**
   * Answers a request that identify() refused (returned nothing or threw).
   * Default: 401 with a JSON error body, and no request context is created.
   */
  onUnidentified?(req: Req, res: Res, error: unknown): void;
}

/** A node:http listener or Express-style handler run inside the request context. */
export type HttpHandler<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> = (
  req: Req,
  res: Res,
  next: (error?: unknown) => void,
) => unknown;
