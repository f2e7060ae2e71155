import { createRequire, syncBuiltinESMExports } from 'node:module';
import { context, createContextKey, diag, logs, metrics, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, hostDetector, osDetector, processDetector, resourceFromAttributes, serviceInstanceIdDetector } from '@opentelemetry/resources';
import { PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { AlwaysOnSampler, BatchSpanProcessor, ConsoleSpanExporter, createAlwaysRecordSampler, ParentBasedSampler, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { AUDIT } from '../../audit/internal/attributes.js';
import { RequestAttributesProcessor } from '../../context/internal/request-attributes-processor.js';
import { TracingAlreadyStartedError } from '../../errors/errors.js';
import { DestinationBaggagePropagator, outboundPropagator } from '../../propagation/internal/destination-baggage-propagator.js';
import { PropagationPolicy } from '../../propagation/internal/propagation-policy.js';
import { MemoryStore } from '../../shared-state/internal/memory-store.js';
import type { ExportStats, Tracing, TracingOptions } from '../types.js';
import { reportOnce } from './report.js';
import { ExportAgents } from './export-agents.js';
import { RequestsInFlight } from './requests-in-flight.js';
import { runningRuntime, setRuntime, stopRuntime, tryGetRuntime } from './runtime.js';
import { StoppableSampler } from './stoppable-sampler.js';
import { ExportAccounting } from './export-accounting.js';
import { SynchronousExportProcessor } from './synchronous-export-processor.js';
import { validateOptions } from './validate-options.js';
import { ISOTRACE_SCOPE, ISOTRACE_VERSION } from '../../version.js';

const DEFAULT_FLUSH_TIMEOUT_MS = 5000;

// One set per process, enabled while isotrace runs. Not request data: OpenTelemetry's own patches.
// A second HttpInstrumentation could never patch node:http again (the shared require hook fires once
// per module), so a restarted isotrace re-enables these instead of making new ones.
let httpInstrumentations: [HttpInstrumentation, UndiciInstrumentation] | undefined;

/** The outbound instrumentations, their hooks pointed at this run's baggage propagator (it decides per request where baggage may go). */
function outboundInstrumentations(baggage: DestinationBaggagePropagator): [HttpInstrumentation, UndiciInstrumentation] {
  httpInstrumentations ??= [new HttpInstrumentation({ disableIncomingRequestInstrumentation: true }), new UndiciInstrumentation()];
  const [http, undici] = httpInstrumentations;
  http.setConfig({ disableIncomingRequestInstrumentation: true, ...baggage.httpHooks() });
  undici.setConfig(baggage.undiciHooks());
  return httpInstrumentations;
}

/** How spans leave the process: batched (production) or synchronously as each ends (tests). */
export type ExportMode = 'batch' | 'synchronous';

/**
 * Sets up OpenTelemetry for this process, once: async-local-storage context,
 * W3C traceparent and baggage propagation, the request-identity span
 * processor, and a batch processor in front of the chosen exporter.
 *
 * Rejects with TypeError naming a bad or unknown option, and with
 * TracingAlreadyStartedError when isotrace already runs (it may start again
 * after shutdown()).
 *
 * ```ts
 * const tracing = await startTracing({ serviceName: 'agent-api', propagateTo: ['inventory.internal'] });
 * process.once('SIGTERM', async () => {
 *   await new Promise((resolve) => server.close(resolve)); // drain first: requests in flight finish, traced
 *   await tracing.shutdown();
 * });
 * ```
 */
export async function startTracing(options: TracingOptions): Promise<Tracing> {
  return startTracingWith(options, 'batch');
}

/**
 * startTracing() with the export mode chosen (setupTestTracing() exports synchronously);
 * `observers` see every span start and end, sampled or not (the test kit records them all).
 */
export async function startTracingWith(options: TracingOptions, mode: ExportMode, observers: readonly SpanProcessor[] = []): Promise<Tracing> {
  validateOptions(options);
  if (runningRuntime()) throw new TracingAlreadyStartedError();
  // A runtime shut down earlier still serves the requests that use it; it is retired once this one is in place.
  const replaced = tryGetRuntime();

  const flushTimeoutMs = options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS;
  const propagateTo = [options.propagateTo ?? []].flat();
  const propagationPolicy = new PropagationPolicy(propagateTo);
  const baggagePropagator = new DestinationBaggagePropagator(propagationPolicy);
  const accounting = new ExportAccounting();
  const agents = new ExportAgents();
  const chosen = createExporter(options, flushTimeoutMs, agents);
  const exporter = chosen && accounting.wrapExporter(chosen);
  const exportProcessor: SpanProcessor | undefined = exporter && accounting.wrapProcessor(mode === 'synchronous'
    ? new SynchronousExportProcessor(exporter)
    : new BatchSpanProcessor({ exporter, maxQueueSize: options.maxQueueSize ?? 2048, exportTimeoutMillis: flushTimeoutMs }));
  const processors: SpanProcessor[] = [new RequestAttributesProcessor(), ...(exportProcessor ? [exportProcessor] : []), ...observers];

  const resource = defaultResource()
    .merge(detectResources({ detectors: [envDetector, hostDetector, osDetector, processDetector, serviceInstanceIdDetector] }))
    .merge(resourceFromAttributes({ 'service.name': options.serviceName }));
  const instrumentations = options.instrumentHttp === false ? [] : outboundInstrumentations(baggagePropagator);
  // Unsampled spans are still recorded (never exported): an outbound CLIENT span must
  // say where it goes for baggage to reach the propagateTo targets of unsampled requests.
  // Stopped at shutdown: nothing is recorded after it, but requests keep valid trace ids.
  const sampler = new StoppableSampler(createAlwaysRecordSampler(options.sampler ?? new ParentBasedSampler({ root: new AlwaysOnSampler() })));
  const sdk = new NodeSDK({
    resource,
    autoDetectResources: false,
    sampler,
    // null keeps the one already registered: NodeSDK skips registration for null, though its type leaves null out.
    contextManager: contextManagerToRegister() as AsyncLocalStorageContextManager,
    textMapPropagator: outboundPropagator(baggagePropagator),
    spanProcessors: processors,
    logRecordProcessors: [],
    metricReaders: options.metricReaders ?? defaultMetricReaders(options, flushTimeoutMs, agents),
    // Outbound HTTP only: inbound requests get their SERVER span from httpRequestContext().
    instrumentations,
  });
  sdk.start();
  // registerInstrumentations() only enables instrumentations whose config says disabled; after a restart ours are merely off.
  for (const instrumentation of instrumentations) instrumentation.enable();
  if (options.instrumentHttp !== false) patchBuiltinHttpForEsm();

  const ownStore = options.sharedStateStore ? undefined : new MemoryStore();
  const storeRecipe = options.sharedStateStore?.workerRecipe?.();
  const requests = new RequestsInFlight();
  setRuntime({
    serviceName: options.serviceName,
    tracer: trace.getTracer(ISOTRACE_SCOPE, ISOTRACE_VERSION),
    store: options.sharedStateStore ?? ownStore!,
    audit: options.audit ?? 'record',
    propagateTo,
    recordToolArguments: options.recordToolArguments ?? false,
    redact: options.redact,
    violations: metrics.getMeter('isotrace').createCounter(AUDIT.metric, { description: 'Run-time isolation audit failures, by check.' }),
    resource,
    exportSpans: (spans) => {
      for (const span of spans) exportProcessor?.onEnd(span);
    },
    workerSettings: {
      serviceName: options.serviceName,
      audit: options.audit ?? 'record',
      recordToolArguments: (options.recordToolArguments ?? false) && options.redact === undefined,
      propagateTo: propagationPolicy.toPortable(),
      ...(storeRecipe ? { store: storeRecipe } : {}),
    },
    requests,
    retire: () => {
      // Requests after shutdown() used the own store too: it is closed only when a restart replaces it and they are done.
      requests.whenIdle().then(() => ownStore?.close()).catch((error: unknown) => reportOnce('store-close-failed', 'could not close the SharedState store of a stopped isotrace.', error));
    },
  });
  replaced?.retire?.();

  let stopping: Promise<void> | undefined;
  return {
    serviceName: options.serviceName,
    stats: () => accounting.stats(),
    forceFlush: () => withinTimeout(Promise.all(processors.map((p) => p.forceFlush())), flushTimeoutMs, 'forceFlush()'),
    shutdown: () => {
      stopping ??= (async () => {
        // Requests in flight, and requests after shutdown, keep running (context, SharedState, tools)
        // without telemetry: from here on no span is recorded, and those still open are dropped when they end (counted).
        sampler.stop();
        await withinTimeout(sdk.shutdown(), flushTimeoutMs, 'shutdown()');
        // Exports still unanswered (a hung or trickling collector) were given up on: their sockets must not keep the process alive.
        agents.close();
        accounting.abandonPending();
        reportLosses(accounting.stats());
        // NodeSDK.shutdown() leaves instrumentations enabled: after shutdown outbound calls would still
        // get traceparent and CLIENT spans from the stopped provider.
        unpatchInstrumentations(instrumentations);
        stopRuntime();
        // The context manager stays registered (requests still run in their context); the rest is
        // unregistered so a restart can register its own.
        trace.disable();
        propagation.disable();
        metrics.disable();
        logs.disable();
      })();
      return stopping;
    },
  };
}

/** One report per tracing run (shutdown() runs once), as a count, of the spans that never reached the exporter's destination. */
function reportLosses({ ended, dropped, failed }: ExportStats): void {
  if (dropped + failed === 0) return;
  // Not reportOnce(): it remembers per process, and a restarted isotrace must still report its own losses.
  diag.warn(`isotrace: ${dropped + failed} of ${ended} spans were not exported (${dropped} dropped: queue full or still queued at shutdown; ${failed} in failed exports).`);
}

/**
 * The HTTP instrumentation patches node:http when it is required; ESM imports
 * bypass require, and modules loaded before startTracing() were never hooked.
 * Requiring the builtins here applies the patch to their shared exports, and
 * syncing the ESM view makes `import { request } from 'node:http'` see it too.
 */
function patchBuiltinHttpForEsm(): void {
  const require = createRequire(import.meta.url);
  require('node:http');
  require('node:https');
  syncBuiltinESMExports();
}

/** Disables the HTTP/undici instrumentations and lets ESM imports of node:http(s) see the unpatched functions again. */
function unpatchInstrumentations(instrumentations: ReadonlyArray<{ disable(): void }>): void {
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

function createExporter(options: TracingOptions, timeoutMillis: number, agents: ExportAgents): SpanExporter | undefined {
  const choice = options.exporter ?? 'otlp';
  if (choice === 'none') return undefined;
  if (choice === 'console') return new ConsoleSpanExporter();
  if (choice === 'otlp') return new OTLPTraceExporter({ ...otlpUrl(options.endpoint, 'v1/traces'), timeoutMillis, httpAgentOptions: agents.factoryFor('TRACES') });
  return choice;
}

/** Metrics follow traces: over OTLP when spans go over OTLP, else nowhere unless metricReaders is given. */
function defaultMetricReaders(options: TracingOptions, timeoutMillis: number, agents: ExportAgents): IMetricReader[] {
  if ((options.exporter ?? 'otlp') !== 'otlp') return [];
  const exporter = new OTLPMetricExporter({ ...otlpUrl(options.endpoint, 'v1/metrics'), timeoutMillis, httpAgentOptions: agents.factoryFor('METRICS') });
  return [new PeriodicExportingMetricReader({ exporter, exportTimeoutMillis: timeoutMillis })];
}

/** The traces URL as endpoint (what many collectors' docs show): its base is the endpoint, so metrics go beside it. */
const TRACES_PATH = /\/v1\/traces\/?$/;

/**
 * The signal URL under an explicit endpoint (`http://collector:4318`, or its
 * traces URL `http://collector:4318/v1/traces`); without one the exporters
 * read the OTEL_* variables.
 */
function otlpUrl(endpoint: string | undefined, signalPath: string): { url?: string } {
  if (endpoint === undefined) return {};
  const base = new URL(endpoint);
  base.pathname = base.pathname.replace(TRACES_PATH, '/');
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return { url: new URL(signalPath, base).href };
}

// One per process: kept registered after shutdown (requests in flight and later ones still run in their
// context) and reused by a restart, so those requests never lose their context.
let contextManager: AsyncLocalStorageContextManager | undefined;
const PROBE = createContextKey('isotrace.context-manager-probe');

/** A new context manager for NodeSDK to register, or null while the one an earlier run registered is still in place. */
function contextManagerToRegister(): AsyncLocalStorageContextManager | null {
  if (contextManager && context.with(ROOT_CONTEXT.setValue(PROBE, true), () => context.active().getValue(PROBE) === true)) return null;
  contextManager = new AsyncLocalStorageContextManager();
  return contextManager;
}

/** Waits for `work`, but never longer than `ms`: telemetry must not hold the application. */
async function withinTimeout(work: Promise<unknown>, ms: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    timer.unref();
  });
  try {
    const outcome = await Promise.race([work.then(() => 'done' as const), timeout]);
    if (outcome === 'timeout') reportOnce(`${what}-timeout`, `${what} did not finish within ${ms} ms; spans still queued may be lost.`);
  } catch (error) {
    reportOnce(`${what}-failed`, `${what} failed; spans still queued may be lost.`, error);
  } finally {
    clearTimeout(timer);
  }
}
