// The soak's reference run, in a process of its own (bench/soak.bench.ts starts it
// with the same flags): the same load shape written by hand on plain OpenTelemetry,
// no isotrace loaded. Each request: a request span in its own context with the
// tenant and user as baggage and attributes, a child tool span around an awaited
// step, one write to a Map standing in for SharedState; the same BatchSpanProcessor
// settings and discarding exporter. What V8 does with its heap here, it does
// without isotrace. Prints its samples as one JSON line on stdout.
import { randomUUID } from 'node:crypto';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { DiscardExporter } from './discard-exporter.ts';
import { runSoak, SOAK_TENANTS, SOAK_USERS, type SoakSample } from './soak-load.ts';

/** What the reference process reports to the bench. */
export interface ReferenceReport {
  samples: SoakSample[];
  exported: number;
}

const exporter = new DiscardExporter();
// isotrace's defaults for a batch processor: a queue of 2048, OpenTelemetry's batch size and delay.
const provider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter, maxQueueSize: 2048 })] });
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(provider);
const tracer = trace.getTracer('bench-soak-reference');
// The SharedState stand-in: one value per tenant and user, overwritten by each request.
const store = new Map<string, number>();

async function oneRequest(i: number): Promise<void> {
  const tenant = `tenant-${i % SOAK_TENANTS}`;
  const user = `user-${i % SOAK_USERS}`;
  const requestId = randomUUID();
  const baggage = propagation.createBaggage({ 'tenant.id': { value: tenant }, 'user.id': { value: user }, 'request.id': { value: requestId } });
  const span = tracer.startSpan('request', { attributes: { 'tenant.id': tenant, 'user.id': user, 'request.id': requestId, 'request.plan': 'pro' } });
  await context.with(trace.setSpan(propagation.setBaggage(context.active(), baggage), span), async () => {
    const tool = tracer.startSpan('execute_tool lookup', { attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup', 'tenant.id': tenant, 'user.id': user } });
    const result = await context.with(trace.setSpan(context.active(), tool), async () => {
      await Promise.resolve();
      return { q: `item-${i}`, hits: 3 };
    });
    tool.setAttribute('tool.result.hits', result.hits);
    tool.end();
    store.set(`${tenant}\u0000${user}\u0000last-request`, i);
  });
  span.end();
}

// Progress on stderr (the bench passes it through); stdout carries only the report.
const samples = await runSoak(oneRequest, (s) => console.error(`reference, ${s.requests.toLocaleString('en-US')} requests: RSS ${(s.rss / 2 ** 20).toFixed(0)} MB, new space ${(s.newSpace / 2 ** 20).toFixed(0)} MB`));
await provider.shutdown();
const report: ReferenceReport = { samples, exported: exporter.exported };
console.log(JSON.stringify(report));
