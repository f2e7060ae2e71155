import { context, propagation, trace, TraceFlags, type Attributes, type Context, type Counter, type TextMapGetter, type TextMapPropagator, type TextMapSetter } from '@opentelemetry/api';
import type * as CoreModule from '@opentelemetry/core';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace';
import { AUDIT } from '../../audit/internal/attributes.js';
import { MemoryStore } from '../../shared-state/internal/memory-store.js';
import type { SharedStateStore, WorkerStoreRecipe } from '../../shared-state/types.js';
import { loadModule } from '../../tracing/internal/load-module.js';
import { processState, setRuntime, type WorkerSettings } from '../../tracing/internal/runtime.js';
import type { ViolationCounts } from './envelope.js';
import { ChannelStore } from './shared-state-channel.js';
import { toSpanData, type SpanData } from './span-transfer.js';
import { decodeSetup, type WorkerSetup } from './worker-setup.js';
import { workerResource, WorkerTracerProvider } from './worker-tracer.js';
import { ISOTRACE_SCOPE, ISOTRACE_VERSION } from '../../version.js';

/**
 * Keeps the spans a worker thread finishes, and the isolation violations it
 * counts, until a task's reply takes them to the submitting thread.
 */
export class ForwardingProcessor implements SpanProcessor {
  #finished: SpanData[] = [];
  /** The worker's violation counter: counted here, whether or not a recorded span shows the violation (an unsampled request's worker spans are not recorded). */
  readonly violations = new ViolationTally();

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

/** What take() returns when nothing was counted (most replies): one array, not one per reply. */
const NO_COUNTS: ViolationCounts = [];

/** A counter that keeps its counts by check until take(): worker threads have no meter. */
class ViolationTally implements Counter {
  readonly #counts = new Map<string, number>();

  add(value: number, attributes?: Attributes): void {
    const check = String(attributes?.[AUDIT.check] ?? 'unknown');
    this.#counts.set(check, (this.#counts.get(check) ?? 0) + value);
  }

  /** The counts since the last call, as (check, count) pairs. */
  take(): ViolationCounts {
    if (this.#counts.size === 0) return NO_COUNTS;
    const counts: ViolationCounts = [];
    for (const [check, count] of this.#counts) counts.push(check, count);
    this.#counts.clear();
    return counts;
  }
}

/**
 * Sets up tracing in this worker thread from the submitting thread's settings,
 * once (kept on the thread's process state, its one isotrace handle): spans
 * are forwarded to the submitting thread and exported there. Where the
 * application started isotrace in the worker itself, that wins and nothing is
 * forwarded. The set-up's outcome itself once it has settled, else the promise
 * of it: a task of a thread that is set up starts without waiting a turn.
 */
export function workerTracing(setup: WorkerSetup): WorkerTracing | Promise<WorkerTracing> {
  const state = processState();
  const pending = (state.workerTracing ??= state.runtime ? Promise.resolve(undefined) : setUpWorkerTracing(...decodeSetup(setup)));
  const done = settled.get(pending);
  if (done) return done.forwarding;
  return pending.then((forwarding) => {
    settled.set(pending, { forwarding });
    return forwarding;
  });
}

/** The forwarding processor, or undefined where the application's own isotrace exports the worker's spans. */
type WorkerTracing = ForwardingProcessor | undefined;

/** What each set-up (the promise on the process state) resolved to. Weak: a set-up replaced on the state is forgotten with it. */
const settled = new WeakMap<Promise<WorkerTracing>, { forwarding: WorkerTracing }>();

/**
 * What only the set-up needs is imported here, at the thread's first task, not
 * with the worker file. The tracer is WorkerTracerProvider's, not the
 * OpenTelemetry SDK's: loading the SDK was most of a new thread's first task.
 */
async function setUpWorkerTracing(settings: WorkerSettings, storeChannel: string | undefined): Promise<ForwardingProcessor> {
  const [{ AsyncLocalStorageContextManager }, { RequestAttributesProcessor }] = await Promise.all([
    import('@opentelemetry/context-async-hooks'),
    import('../../context/internal/request-attributes-processor.js'),
  ]);
  const store = await workerStore(settings, storeChannel);
  const forwarding = new ForwardingProcessor();
  const resource = workerResource({ 'service.name': settings.serviceName });
  const provider = new WorkerTracerProvider(resource, [new RequestAttributesProcessor(), forwarding]);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new WorkerPropagator());
  trace.setGlobalTracerProvider(provider);
  setRuntime({
    serviceName: settings.serviceName,
    tracer: provider.getTracer(ISOTRACE_SCOPE, ISOTRACE_VERSION),
    store,
    audit: settings.audit,
    propagateTo: [],
    recordToolArguments: settings.recordToolArguments,
    redact: undefined,
    // Counted on the submitting thread, which receives the counts with each reply.
    violations: forwarding.violations,
    resource,
    exportSpans: () => {},
    workerSettings: settings,
  });
  return forwarding;
}

/**
 * What the submitting thread's propagator does in a worker thread, where no
 * HTTP instrumentation runs: an inject() writes traceparent and tracestate,
 * never baggage (there, a hand-written inject() gets none whatever propagateTo
 * allows: only isotrace's instrumentation hooks send it, to allowed
 * destinations); an extract() reads both. Built at its first use, so a task
 * that propagates nothing does not load @opentelemetry/core.
 */
class WorkerPropagator implements TextMapPropagator {
  #inner: TextMapPropagator | undefined;

  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    this.#propagator().inject(ctx, carrier, setter);
  }

  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    return this.#propagator().extract(ctx, carrier, getter);
  }

  fields(): string[] {
    return this.#propagator().fields();
  }

  #propagator(): TextMapPropagator {
    if (this.#inner) return this.#inner;
    const { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } = loadModule<typeof CoreModule>('@opentelemetry/core');
    const baggage = new W3CBaggagePropagator();
    const baggageInOnly: TextMapPropagator = { inject: () => {}, extract: (ctx, carrier, getter) => baggage.extract(ctx, carrier, getter), fields: () => baggage.fields() };
    return (this.#inner = new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), baggageInOnly] }));
  }
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
