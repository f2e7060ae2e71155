import { createRequire, syncBuiltinESMExports } from 'node:module';
import { context, diag, logs, metrics, propagation, trace } from '@opentelemetry/api';
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
import { outboundPropagator } from '../../propagation/internal/destination-baggage-propagator.js';
import { MemoryStore } from '../../shared-state/internal/memory-store.js';
import type { ExportStats, Tracing, TracingOptions } from '../types.js';
import { reportOnce } from './report.js';
import { setRuntime, tryGetRuntime } from './runtime.js';
import { ExportAccounting } from './export-accounting.js';
import { SynchronousExportProcessor } from './synchronous-export-processor.js';
import { validateOptions } from './validate-options.js';

const DEFAULT_FLUSH_TIMEOUT_MS = 5000;

// One set per process, enabled while isotrace runs. Not request data: OpenTelemetry's own patches.
// A second HttpInstrumentation could never patch node:http again (the shared require hook fires once
// per module), so a restarted isotrace re-enables these instead of making new ones.
let httpInstrumentations: [HttpInstrumentation, UndiciInstrumentation] | undefined;

function outboundInstrumentations(): [HttpInstrumentation, UndiciInstrumentation] {
  httpInstrumentations ??= [new HttpInstrumentation({ disableIncomingRequestInstrumentation: true }), new UndiciInstrumentation()];
  return httpInstrumentations;
}

/** How spans leave the process: batched (production) or synchronously as each ends (tests). */
export type ExportMode = 'batch' | 'synchronous';

/**
 * Sets up OpenTelemetry for this process, once: async-local-storage context,
 * W3C traceparent and baggage propagation, the request-identity span
 * processor, and a batch processor in front of the chosen exporter.
 *
 * Rejects with TypeError naming a bad option, and with
 * TracingAlreadyStartedError when isotrace already runs.
 *
 * ```ts
 * const tracing = await startTracing({ serviceName: 'agent-api', propagateTo: ['inventory.internal'] });
 * process.on('SIGTERM', () => void tracing.shutdown());
 * ```
 */
export async function startTracing(options: TracingOptions): Promise<Tracing> {
  return startTracingWith(options, 'batch');
}

/** startTracing() with the export mode chosen (setupTestTracing() exports synchronously). */
export async function startTracingWith(options: TracingOptions, mode: ExportMode): Promise<Tracing> {
  validateOptions(options);
  if (tryGetRuntime()) throw new TracingAlreadyStartedError();

  const flushTimeoutMs = options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS;
  const propagateTo = [options.propagateTo ?? []].flat();
  const accounting = new ExportAccounting();
  const chosen = createExporter(options, flushTimeoutMs);
  const exporter = chosen && accounting.wrapExporter(chosen);
  const exportProcessor: SpanProcessor | undefined = exporter && accounting.wrapProcessor(mode === 'synchronous'
    ? new SynchronousExportProcessor(exporter)
    : new BatchSpanProcessor({ exporter, maxQueueSize: options.maxQueueSize ?? 2048, exportTimeoutMillis: flushTimeoutMs }));
  const processors: SpanProcessor[] = [new RequestAttributesProcessor(), ...(exportProcessor ? [exportProcessor] : [])];

  const resource = defaultResource()
    .merge(detectResources({ detectors: [envDetector, hostDetector, osDetector, processDetector, serviceInstanceIdDetector] }))
    .merge(resourceFromAttributes({ 'service.name': options.serviceName }));
  const instrumentations = options.instrumentHttp === false ? [] : outboundInstrumentations();
  const sdk = new NodeSDK({
    resource,
    autoDetectResources: false,
    // Unsampled spans are still recorded (never exported): an outbound CLIENT span must
    // say where it goes for baggage to reach the propagateTo targets of unsampled requests.
    sampler: createAlwaysRecordSampler(options.sampler ?? new ParentBasedSampler({ root: new AlwaysOnSampler() })),
    contextManager: new AsyncLocalStorageContextManager(),
    textMapPropagator: outboundPropagator(propagateTo),
    spanProcessors: processors,
    logRecordProcessors: [],
    metricReaders: options.metricReaders ?? defaultMetricReaders(options, flushTimeoutMs),
    // Outbound HTTP only: inbound requests get their SERVER span from httpRequestContext().
    instrumentations,
  });
  sdk.start();
  // registerInstrumentations() only enables instrumentations whose config says disabled; after a restart ours are merely off.
  for (const instrumentation of instrumentations) instrumentation.enable();
  if (options.instrumentHttp !== false) patchBuiltinHttpForEsm();

  const ownStore = options.sharedStateStore ? undefined : new MemoryStore();
  const storeRecipe = options.sharedStateStore?.workerRecipe?.();
  setRuntime({
    serviceName: options.serviceName,
    tracer: trace.getTracer('isotrace'),
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
      ...(storeRecipe ? { store: storeRecipe } : {}),
    },
  });

  let stopping: Promise<void> | undefined;
  return {
    serviceName: options.serviceName,
    stats: () => accounting.stats(),
    forceFlush: () => withinTimeout(Promise.all(processors.map((p) => p.forceFlush())), flushTimeoutMs, 'forceFlush()'),
    shutdown: () => {
      stopping ??= (async () => {
        await withinTimeout(sdk.shutdown(), flushTimeoutMs, 'shutdown()');
        reportLosses(accounting.stats());
        // NodeSDK.shutdown() leaves instrumentations enabled: after shutdown outbound calls would still
        // get traceparent and CLIENT spans from the stopped provider.
        unpatchInstrumentations(instrumentations);
        await ownStore?.close();
        setRuntime(undefined);
        trace.disable();
        context.disable();
        propagation.disable();
        metrics.disable();
        // NodeSDK registers a global LoggerProvider too; left registered, a restart could not register its own.
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

function createExporter(options: TracingOptions, timeoutMillis: number): SpanExporter | undefined {
  const choice = options.exporter ?? 'otlp';
  if (choice === 'none') return undefined;
  if (choice === 'console') return new ConsoleSpanExporter();
  if (choice === 'otlp') return new OTLPTraceExporter({ ...otlpUrl(options.endpoint, 'v1/traces'), timeoutMillis });
  return choice;
}

/** Metrics follow traces: over OTLP when spans go over OTLP, else nowhere unless metricReaders is given. */
function defaultMetricReaders(options: TracingOptions, timeoutMillis: number): IMetricReader[] {
  if ((options.exporter ?? 'otlp') !== 'otlp') return [];
  return [new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ ...otlpUrl(options.endpoint, 'v1/metrics'), timeoutMillis }), exportTimeoutMillis: timeoutMillis })];
}

/** The signal URL under an explicit endpoint; without one the exporters read the OTEL_* variables. */
function otlpUrl(endpoint: string | undefined, signalPath: string): { url?: string } {
  return endpoint === undefined ? {} : { url: new URL(signalPath, endpoint.endsWith('/') ? endpoint : `${endpoint}/`).href };
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
