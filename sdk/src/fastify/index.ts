/** `isotrace/fastify`: the Fastify plugin, each request in its own request context and SERVER span. */
export { isotracePlugin } from './internal/plugin.js';
export type { FastifyRequestContextOptions } from './types.js';
export type { Identity } from '../http/types.js';
