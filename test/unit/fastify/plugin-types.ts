/**
 * Type test of the Fastify plugin (checked by `tsc --noEmit`, never run):
 * `register(isotracePlugin, { identify })` type-checks with the Fastify
 * request in every callback, `request.isotrace` is the RequestContext, and
 * wrong options do not compile.
 */
import Fastify from 'fastify';
import type { RequestContext } from 'isotrace';
import { isotracePlugin, type FastifyRequestContextOptions, type Identity } from 'isotrace/fastify';

export async function typedPlugin(): Promise<void> {
  const app = Fastify();
  await app.register(isotracePlugin, { identify: (request) => ({ tenantId: String(request.headers['x-tenant']), userId: request.ip }) });
  const options: FastifyRequestContextOptions = {
    identify: async (request): Promise<Identity | undefined> => (request.routeOptions.url === '/health' ? undefined : { tenantId: 't', userId: 'u', values: { plan: 'pro' } }),
    trustInbound: (request) => request.headers['x-mesh-peer'] === 'verified',
    name: (request) => `api ${request.method}`,
    onUnidentified: async (_request, reply) => {
      await reply.code(403).send({ error: 'forbidden' });
    },
  };
  await app.register(isotracePlugin, options);
  app.get<{ Params: { id: string } }>('/items/:id', async (request) => {
    const ctx: RequestContext = request.isotrace;
    return { id: request.params.id, tenantId: ctx.tenantId };
  });

  // @ts-expect-error -- identify is required
  await app.register(isotracePlugin, {});
  // @ts-expect-error -- identify answers with an Identity (tenantId and userId), not any object
  await app.register(isotracePlugin, { identify: () => ({ tenant: 'acme' }) });
  // @ts-expect-error -- trustInbound is a function of the request, not a flag
  await app.register(isotracePlugin, { identify: () => undefined, trustInbound: true });
  app.get('/', async (request) => {
    // @ts-expect-error -- request.isotrace is a RequestContext, not a string
    const wrong: string = request.isotrace;
    return wrong;
  });
}
