import { createRequire, syncBuiltinESMExports } from 'node:module';
import { metrics, type Counter, type Tracer } from '@opentelemetry/api';
import type * as HttpInstrumentationModule from '@opentelemetry/instrumentation-http';
import type { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import type * as UndiciInstrumentationModule from '@opentelemetry/instrumentation-undici';
import type { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { AUDIT } from '../../audit/internal/attributes.js';
import { RequestAttributesProcessor } from '../../context/internal/request-attributes-processor.js';
import { DestinationBaggagePropagator } from '../../propagation/internal/destination-baggage-propagator.js';
import { PropagationPolicy } from '../../propagation/internal/propagation-policy.js';
import { MemoryStore } from '../../shared-state/internal/memory-store.js';
import type { PropagationTarget, TracingOptions } from '../types.js';
import { loadModule } from './load-module.js';
import { reportOnce } from './report.js';
import { RequestsInFlight } from './requests-in-flight.js';
import { processState, registeredRuntime, setRuntime, type Runtime } from './runtime.js';

/** The options that shape isotrace itself, whoever owns the OpenTelemetry pipeline (startTracing() or a host). */
export type IsotraceCoreOptions = Pick<TracingOptions, 'serviceName' | 'propagateTo' | 'audit' | 'sharedStateStore' | 'recordToolArguments' | 'redact' | 'instrumentHttp'>;

/** The outbound HTTP instrumentations isotrace decides baggage through. */
export type OutboundInstrumentations = [HttpInstrumentation, UndiciInstrumentation];

/**
 * What isotrace adds to an OpenTelemetry setup: the same parts go into
 * startTracing()'s own NodeSDK and, through createIsotrace(), into a host's.
 */
export interface IsotraceParts {
  readonly propagateTo: readonly PropagationTarget[];
  readonly policy: PropagationPolicy;
  /** Baggage only to propagateTo destinations, decided through the instrumentations' hooks. */
  readonly baggage: DestinationBaggagePropagator;
  /** Stamps the request identity on every span started inside a request. */
  readonly requestAttributes: RequestAttributesProcessor;
  /** isotrace's own HTTP/undici instrumentations (none with `instrumentHttp: false`). */
  readonly instrumentations: OutboundInstrumentations | [];
}

/** The parts for these options; the instrumentations' hooks point at this set's baggage propagator. */
export function createIsotraceParts(options: IsotraceCoreOptions): IsotraceParts {
  const propagateTo = [options.propagateTo ?? []].flat();
  const policy = new PropagationPolicy(propagateTo);
  const baggage = new DestinationBaggagePropagator(policy);
  return {
    propagateTo,
    policy,
    baggage,
    requestAttributes: new RequestAttributesProcessor(),
    instrumentations: options.instrumentHttp === false ? [] : outboundInstrumentations(baggage),
  };
}

/**
 * The outbound instrumentations, their hooks pointed at this run's baggage
 * propagator (it decides per request where baggage may go). One set per
 * process, kept on the process state: a restarted isotrace re-enables them
 * (a second HttpInstrumentation could never patch node:http again).
 */
export function outboundInstrumentations(baggage: DestinationBaggagePropagator): OutboundInstrumentations {
  const state = processState();
  state.httpInstrumentations ??= newOutboundInstrumentations();
  const [http, undici] = state.httpInstrumentations;
  http.setConfig({ disableIncomingRequestInstrumentation: true, ...baggage.httpHooks() });
  undici.setConfig(baggage.undiciHooks());
  return state.httpInstrumentations;
}

/** Loaded when first made, not at import: `isotrace` and `isotrace/otel` stay light until tracing starts. */
function newOutboundInstrumentations(): OutboundInstrumentations {
  const { HttpInstrumentation } = loadModule<typeof HttpInstrumentationModule>('@opentelemetry/instrumentation-http');
  const { UndiciInstrumentation } = loadModule<typeof UndiciInstrumentationModule>('@opentelemetry/instrumentation-undici');
  return [new HttpInstrumentation({ disableIncomingRequestInstrumentation: true }), new UndiciInstrumentation()];
}

/**
 * The HTTP instrumentation patches node:http when it is required; ESM imports
 * bypass require, and modules loaded before the instrumentation was enabled were
 * never hooked. Requiring the builtins here applies the patch to their shared
 * exports, and syncing the ESM view makes `import { request } from 'node:http'` see it too.
 */
export function patchBuiltinHttpForEsm(): void {
  const require = createRequire(import.meta.url);
  require('node:http');
  require('node:https');
  syncBuiltinESMExports();
}

/** Disables the HTTP/undici instrumentations and lets ESM imports of node:http(s) see the unpatched functions again. */
export function unpatchInstrumentations(instrumentations: ReadonlyArray<{ disable(): void }>): void {
  if (instrumentations.length === 0) return;
  for (const instrumentation of instrumentations) {
    try {
      instrumentation.disable();
    } catch (error) {
      reportOnce('instrumentation-disable-failed', 'could not disable an HTTP instrumentation at shutdown.', error);
    }
  }
  syncBuiltinESMExports();
}

/** Where a runtime's spans go: startTracing()'s own pipeline, or the host's. */
export interface RuntimePipeline {
  readonly tracer: Tracer;
  readonly resource: Resource;
  /** Sends spans finished in worker threads through the pipeline. */
  exportSpans(spans: readonly ReadableSpan[]): void;
  /** Wraps the violations counter (the test kit tallies each violation as it happens). */
  observeViolations?(counter: Counter): Counter;
}

/**
 * Makes isotrace run with these options (their service name resolved) and
 * parts: request context, tools, SharedState and audits use it from now on,
 * and requests carry it. A runtime shut down earlier still serves the requests
 * started under it; it is retired once this one is in place.
 */
export function activateRuntime(options: IsotraceCoreOptions & { serviceName: string }, parts: IsotraceParts, pipeline: RuntimePipeline): Runtime {
  const replaced = registeredRuntime();
  const ownStore = options.sharedStateStore ? undefined : new MemoryStore();
  const storeRecipe = options.sharedStateStore?.workerRecipe?.();
  const requests = new RequestsInFlight();
  const violations = metrics.getMeter('isotrace').createCounter(AUDIT.metric, { description: 'Run-time isolation audit failures, by check.' });
  const runtime: Runtime = {
    serviceName: options.serviceName,
    tracer: pipeline.tracer,
    store: options.sharedStateStore ?? ownStore!,
    audit: options.audit ?? 'record',
    propagateTo: parts.propagateTo,
    recordToolArguments: options.recordToolArguments ?? false,
    redact: options.redact,
    violations: pipeline.observeViolations?.(violations) ?? violations,
    resource: pipeline.resource,
    exportSpans: (spans) => pipeline.exportSpans(spans),
    workerSettings: {
      serviceName: options.serviceName,
      audit: options.audit ?? 'record',
      recordToolArguments: (options.recordToolArguments ?? false) && options.redact === undefined,
      ...(storeRecipe ? { store: storeRecipe } : {}),
    },
    requests,
    retire: () => {
      // Requests after shutdown() used the own store too: it is closed only when a restart replaces it and they are done.
      requests.whenIdle().then(() => ownStore?.close()).catch((error: unknown) => reportOnce('store-close-failed', 'could not close the SharedState store of a stopped isotrace.', error));
    },
  };
  setRuntime(runtime);
  replaced?.retire?.();
  return runtime;
}
