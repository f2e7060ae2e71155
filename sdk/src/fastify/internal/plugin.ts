import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { context } from '@opentelemetry/api';
import type { FastifyRequestContextOptions } from '../types.js';
import { enterRequest, rememberError, REQUEST_SCOPE, scopeOf } from './request-scope.js';

/**
 * The Fastify plugin: serves each request in its own request context and
 * SERVER span, as httpRequestContext() does for node:http and Express.
 *
 * It applies to the whole app (it is not encapsulated): register it (and
 * await it) before your routes and before hooks that should see the context.
 * From its `onRequest` hook on, the rest of the request runs inside the
 * context: later `onRequest`, `preParsing`, `preValidation` and `preHandler`
 * hooks, body parsing, the handler, `preSerialization` and `onSend` hooks,
 * and the error handler. Every route registered after it runs its handler in
 * its own request's context, even when a hook before it resumed elsewhere.
 *
 * - The span is named after Fastify's route, prefix included
 *   (`GET /api/items/:id`), with `http.route`; `url.path` is the full path.
 * - It continues a valid inbound `traceparent`; inbound baggage is kept only
 *   when `trustInbound(request)` says the peer is trusted.
 * - Identity comes only from `identify(request)`; when it refuses: 401 (or
 *   `onUnidentified`), no context, and the route never runs.
 * - A handler that throws is answered by Fastify's error handler (yours, or
 *   its default 500); a 5xx answer records the exception, its `error.type`
 *   and status ERROR on the span.
 * - Responses carry `x-request-id`, `x-correlation-id` and `traceresponse`.
 *
 * Registration fails with a TypeError naming a bad option.
 *
 * ```ts
 * import Fastify from 'fastify';
 * import { getRequestContext } from 'isotrace';
 * import { isotracePlugin } from 'isotrace/fastify';
 *
 * const app = Fastify();
 * await app.register(isotracePlugin, { identify: (request) => verifySession(request.headers.authorization) });
 * app.get('/items/:id', async (request) => ({ tenant: request.isotrace.tenantId, same: getRequestContext() === request.isotrace }));
 * ```
 */
export const isotracePlugin: FastifyPluginCallback<FastifyRequestContextOptions> = fastifyPlugin(registerIsotrace, { fastify: '5.x', name: 'isotrace' });

function registerIsotrace(fastify: FastifyInstance, options: FastifyRequestContextOptions, done: (error?: Error) => void): void {
  const invalid = optionsError(options);
  // Through done(): a throw here would escape Fastify's boot as an uncaught exception.
  if (invalid) {
    done(invalid);
    return;
  }
  fastify.decorateRequest('isotrace');
  fastify.decorateRequest(REQUEST_SCOPE);
  fastify.addHook('onRequest', (request, reply, next) => enterRequest(options, request, reply, next));
  fastify.addHook('onRoute', (route) => {
    route.handler = inOwnRequest(route.handler as Handler) as typeof route.handler;
  });
  fastify.addHook('onError', (request, _reply, error, next) => {
    rememberError(request, error);
    next();
  });
  done();
}

type Handler = (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) => unknown;

/**
 * The route's handler, run in its own request's context whatever context
 * the hooks before it resumed in (a callback-style hook that calls done()
 * from a pooled callback would hand over the pool's, or another request's).
 */
function inOwnRequest(handler: Handler): Handler {
  return function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply): unknown {
    const scope = scopeOf(request);
    return scope ? context.with(scope.context, handler, this, request, reply) : handler.call(this, request, reply);
  };
}

function optionsError(options: FastifyRequestContextOptions): TypeError | undefined {
  if (options === null || typeof options !== 'object' || typeof options.identify !== 'function') {
    return new TypeError("isotracePlugin: option 'identify' must be a function returning the request's tenantId and userId.");
  }
  if (options.trustInbound !== undefined && typeof options.trustInbound !== 'function') return new TypeError("isotracePlugin: option 'trustInbound' must be a function.");
  if (options.name !== undefined && typeof options.name !== 'string' && typeof options.name !== 'function') {
    return new TypeError("isotracePlugin: option 'name' must be a string or a function of the request.");
  }
  if (options.onUnidentified !== undefined && typeof options.onUnidentified !== 'function') return new TypeError("isotracePlugin: option 'onUnidentified' must be a function.");
  return undefined;
}
