import { context, createNoopMeter, propagation, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { TracerProvider, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { RequestAttributesProcessor } from '../../context/internal/request-attributes-processor.js';
import { DestinationBaggagePropagator, outboundPropagator } from '../../propagation/internal/destination-baggage-propagator.js';
import { PropagationPolicy } from '../../propagation/internal/propagation-policy.js';
import { MemoryStore } from '../../shared-state/internal/memory-store.js';
import type { SharedStateStore, WorkerStoreRecipe } from '../../shared-state/types.js';
import { processState, setRuntime, type WorkerSettings } from '../../tracing/internal/runtime.js';
import { ChannelStore } from './shared-state-channel.js';
import { toSpanData, type SpanData } from './span-transfer.js';
import { ISOTRACE_SCOPE, ISOTRACE_VERSION } from '../../version.js';

/** Keeps the spans a worker thread finishes until the task's reply takes them to the submitting thread. */
export class ForwardingProcessor implements SpanProcessor {
  #finished: SpanData[] = [];

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0) this.#finished.push(toSpanData(span));
  }

  /** The spans finished since the last call (possibly of concurrent tasks: all go to the same exporter). */
  take(): SpanData[] {
    const spans = this.#finished;
    this.#finished = [];
    return spans;
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {}
}

/**
 * Sets up tracing in this worker thread from the submitting thread's settings,
 * once (kept on the thread's process state, its one isotrace handle): spans
 * are forwarded to the submitting thread and exported there. Where the
 * application started isotrace in the worker itself, that wins and nothing is
 * forwarded.
 */
export function ensureWorkerTracing(settings: WorkerSettings | undefined, storeChannel: string | undefined): Promise<ForwardingProcessor | undefined> {
  const state = processState();
  if (!state.workerTracing && !settings) return Promise.resolve(undefined);
  state.workerTracing ??= state.runtime ? Promise.resolve(undefined) : setUpWorkerTracing(settings!, storeChannel);
  return state.workerTracing;
}

async function setUpWorkerTracing(settings: WorkerSettings, storeChannel: string | undefined): Promise<ForwardingProcessor> {
  const store = await workerStore(settings, storeChannel);
  const forwarding = new ForwardingProcessor();
  const resource = resourceFromAttributes({ 'service.name': settings.serviceName });
  const provider = new TracerProvider({ resource, spanProcessors: [new RequestAttributesProcessor(), forwarding] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  // The submitting thread's propagateTo policy: a hand-written inject() here gets traceparent, never baggage (as there).
  propagation.setGlobalPropagator(outboundPropagator(new DestinationBaggagePropagator(PropagationPolicy.fromPortable(settings.propagateTo))));
  trace.setGlobalTracerProvider(provider);
  setRuntime({
    serviceName: settings.serviceName,
    tracer: provider.getTracer(ISOTRACE_SCOPE, ISOTRACE_VERSION),
    store,
    audit: settings.audit,
    propagateTo: [],
    recordToolArguments: settings.recordToolArguments,
    redact: undefined,
    // Violations are counted where the forwarded spans are exported.
    violations: createNoopMeter().createCounter('isotrace.isolation.violations'),
    resource,
    exportSpans: () => {},
    workerSettings: settings,
  });
  return forwarding;
}

/** The store's own backend when the submitting thread's store says how to open it (its recipe); else that thread's store over the channel. */
async function workerStore(settings: WorkerSettings, storeChannel: string | undefined): Promise<SharedStateStore> {
  if (settings.store) return openFromRecipe(settings.store);
  return storeChannel ? new ChannelStore(storeChannel) : new MemoryStore();
}

const STORE_METHODS = ['get', 'set', 'update', 'delete', 'keys'] as const;

/** Imports the recipe's module and calls its factory: any store, not only isotrace's own, can open itself in workers. */
async function openFromRecipe(recipe: WorkerStoreRecipe): Promise<SharedStateStore> {
  const module = (await import(recipe.module)) as Record<string, unknown>;
  const factory = module[recipe.factory];
  if (typeof factory !== 'function') throw new TypeError(`SharedState store recipe: ${recipe.module} has no exported function '${recipe.factory}' to open the store in a worker thread.`);
  const store = (await (factory as (options: unknown) => unknown)(recipe.options)) as Partial<SharedStateStore> | null;
  if (!STORE_METHODS.every((method) => typeof store?.[method] === 'function')) {
    throw new TypeError(`SharedState store recipe: '${recipe.factory}' from ${recipe.module} did not return a SharedStateStore (with ${STORE_METHODS.join(', ')}).`);
  }
  return store as SharedStateStore;
}
