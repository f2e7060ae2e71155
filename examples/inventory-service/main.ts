/**
 * Runs the inventory service on its own:
 *   npm run build && node examples/inventory-service/main.ts
 * PORT (default 8081), HOST (default 127.0.0.1; 0.0.0.0 in a container),
 * OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318),
 * TRUST_INBOUND=true to keep baggage from callers (identity never comes from it),
 * SERVICE_TOKEN_SECRET shared with the agent service.
 */
import { startTracing } from 'isotrace';
import { portFromEnv, stopOnSignals } from '../shared/run.ts';
import { createInventoryService } from './server.ts';

const tracing = await startTracing({ serviceName: 'inventory-service', endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined });
const service = await createInventoryService({
  port: portFromEnv('PORT', 8081),
  host: process.env.HOST ?? '127.0.0.1',
  trustInbound: process.env.TRUST_INBOUND === 'true',
});
console.log(`inventory-service listening on ${service.url} (GET /stock?item=lamp with an x-service-token header)`);

stopOnSignals('inventory-service', async () => {
  await service.close();
  await tracing.shutdown();
});
