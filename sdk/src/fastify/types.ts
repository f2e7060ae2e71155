import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../context/types.js';
import type { Identity } from '../http/types.js';

/**
 * Options of the Fastify plugin: httpRequestContext()'s, given the Fastify
 * request (its `raw` is the node:http request, for an `identify` you already
 * wrote for httpRequestContext()).
 */
export interface FastifyRequestContextOptions {
  /**
   * Your auth: the tenant and user of this request, or undefined to refuse it.
   * Runs in the `onRequest` stage: headers, query, params and cookies are
   * there, the body is not parsed yet. Never read from inbound baggage.
   */
  identify(request: FastifyRequest): Identity | undefined | Promise<Identity | undefined>;
  /**
   * Whether the peer is trusted to send baggage (e.g. your own reverse proxy).
   * Default: nobody. Untrusted baggage is dropped; only a valid correlation id
   * is taken from it. A trusted peer's `X-Forwarded-Proto` and
   * `X-Forwarded-Host` also give `url.scheme`, `server.address` and `server.port`.
   */
  trustInbound?(request: FastifyRequest): boolean;
  /**
   * The SERVER span's name. Default: the method and Fastify's route, prefix
   * included (`GET /api/items/:id`), or the method alone when no route
   * matched (Fastify's 404).
   */
  name?: string | ((request: FastifyRequest) => string);
  /**
   * Answers a request that identify() refused (returned nothing or threw),
   * with `reply.send()` before it returns or its promise settles. A reply it
   * leaves unsent is answered 401. Default: 401 with a JSON error body. No
   * request context is created and the route never runs.
   */
  onUnidentified?(request: FastifyRequest, reply: FastifyReply, error: unknown): void | Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The request context isotrace gave this request (the same object
     * getRequestContext() returns inside its handler). Set from the plugin's
     * `onRequest` hook on; undefined in hooks that ran before it.
     */
    isotrace: RequestContext;
  }
}
