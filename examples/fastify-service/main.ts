/**
 * Runs the Fastify example service:
 *   npm run build && node examples/fastify-service/main.ts
 * PORT (default 8082), HOST (default 127.0.0.1; 0.0.0.0 in a container),
 * OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318).
 *
 *   curl -s localhost:8082/api/stock/lamp -H 'x-tenant-id: acme' -H 'x-user-id: ada'
 */
import { startTracing } from 'isotrace';
import { portFromEnv, stopOnSignals } from '../shared/run.ts';
import { createFastifyService } from './server.ts';

const tracing = await startTracing({ serviceName: 'fastify-service', endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined });
const service = await createFastifyService({ port: portFromEnv('PORT', 8082), host: process.env.HOST ?? '127.0.0.1' });
console.log(`fastify-service listening on ${service.url} (GET /api/stock/:item, GET /health)`);

stopOnSignals('fastify-service', async () => {
  await service.close();
  await tracing.shutdown();
});
