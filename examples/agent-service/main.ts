/**
 * Runs the agent service on its own (start the inventory service first):
 *   npm run build && node examples/agent-service/main.ts
 * PORT (default 8080), HOST (default 127.0.0.1; 0.0.0.0 in a container),
 * INVENTORY_URL (default http://127.0.0.1:8081; its host receives baggage),
 * OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318),
 * SERVICE_TOKEN_SECRET shared with the inventory service,
 * REDIS_URL (e.g. redis://localhost:6379) to keep SharedState in Redis instead of memory.
 */
import { startTracing } from 'isotrace';
import { RedisStore } from 'isotrace/shared-state';
import { portFromEnv, stopOnSignals } from '../shared/run.ts';
import { createAgentService } from './server.ts';

const inventoryUrl = process.env.INVENTORY_URL || 'http://127.0.0.1:8081';
const tracing = await startTracing({
  serviceName: 'agent-api',
  endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined,
  // Our own inventory service may receive baggage (correlation id, tenant); every other host gets traceparent only.
  propagateTo: [new URL(inventoryUrl).host],
  ...(process.env.REDIS_URL ? { sharedStateStore: new RedisStore({ url: process.env.REDIS_URL }) } : {}),
});
const service = await createAgentService({ inventoryUrl, port: portFromEnv('PORT', 8080), host: process.env.HOST ?? '127.0.0.1' });
console.log(`agent-api listening on ${service.url} (POST /chat) and ${service.wsUrl}`);

stopOnSignals('agent-api', async () => {
  await service.close();
  await tracing.shutdown();
});
