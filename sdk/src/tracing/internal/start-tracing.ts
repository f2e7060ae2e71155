import { context, createContextKey, diag, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, hostDetector, osDetector, processDetector, resourceFromAttributes, serviceInstanceIdDetector } from '@opentelemetry/resources';
import { PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { AlwaysOnSampler, BatchSpanProcessor, ConsoleSpanExporter, createAlwaysRecordSampler, ParentBasedSampler, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { startCallbackAudit } from '../../audit/internal/callback-audit.js';
import { IsotraceSetupError, TracingAlreadyStartedError } from '../../errors/errors.js';
import { outboundPropagator } from '../../propagation/internal/destination-baggage-propagator.js';
import type { ExportStats, Tracing, TracingOptions } from '../types.js';
import { ExportAgents } from './export-agents.js';
import { activateRuntime, createIsotraceParts, patchBuiltinHttpForEsm, unpatchInstrumentations } from './isotrace-parts.js';
import { disableGlobals, isGlobalContextManager, registeredGlobals, type OtelGlobal } from './otel-globals.js';
import { runningRuntime, stopRuntime } from './runtime.js';
import { StoppableSampler } from './stoppable-sampler.js';
import { ExportAccounting } from './export-accounting.js';
import { SynchronousExportProcessor } from './synchronous-export-processor.js';
import { validateOptions } from './validate-options.js';
import { withinTimeout } from './within-timeout.js';
import { ISOTRACE_SCOPE, ISOTRACE_VERSION } from '../../version.js';

const DEFAULT_FLUSH_TIMEOUT_MS = 5000;

/** How spans leave the process: batched (production) or synchronously as each ends (tests). */
export type ExportMode = 'batch' | 'synchronous';

/**
 * Sets up OpenTelemetry for this process, once: async-local-storage context,
 * W3C traceparent and baggage propagation, the request-identity span
 * processor, and a batch processor in front of the chosen exporter.
 *
 * Rejects with TypeError naming a bad or unknown option, with
 * TracingAlreadyStartedError when isotrace already runs (it may start again
 * after shutdown()), and with IsotraceSetupError when another OpenTelemetry
 * setup already registered a tracer provider, propagator or context manager:
 * plug isotrace into that setup with createIsotrace() from 'isotrace/otel'.
 * Its shutdown unregisters only the globals it registered itself.
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
  rejectForeignSetup();
  // What this run registers, and so what its shutdown unregisters: never a global someone else registered first.
  const registeredBefore = registeredGlobals();

  const flushTimeoutMs = options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS;
  const parts = createIsotraceParts(options);
  const accounting = new ExportAccounting();
  const agents = new ExportAgents();
  const chosen = createExporter(options, flushTimeoutMs, agents);
  const exporter = chosen && accounting.wrapExporter(chosen);
  const exportProcessor: SpanProcessor | undefined = exporter && accounting.wrapProcessor(mode === 'synchronous'
    ? new SynchronousExportProcessor(exporter)
    : new BatchSpanProcessor({ exporter, maxQueueSize: options.maxQueueSize ?? 2048, exportTimeoutMillis: flushTimeoutMs }));
  const processors: SpanProcessor[] = [parts.requestAttributes, ...(exportProcessor ? [exportProcessor] : []), ...observers];

  const resource = defaultResource()
    .merge(detectResources({ detectors: [envDetector, hostDetector, osDetector, processDetector, serviceInstanceIdDetector] }))
    .merge(resourceFromAttributes({ 'service.name': options.serviceName }));
  const { instrumentations } = parts;
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
    textMapPropagator: outboundPropagator(parts.baggage),
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

  activateRuntime(options, parts, {
    tracer: trace.getTracer(ISOTRACE_SCOPE, ISOTRACE_VERSION),
    resource,
    exportSpans: (spans) => {
      for (const span of spans) exportProcessor?.onEnd(span);
    },
  });
  const ownGlobals = difference(registeredGlobals(), registeredBefore);
  const stopCallbackAudit = startCallbackAudit(options.auditCallbacks);

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
        stopCallbackAudit();
        await withinTimeout(sdk.shutdown(), flushTimeoutMs, 'shutdown()');
        // Exports still unanswered (a hung or trickling collector) were given up on: their sockets must not keep the process alive.
        agents.close();
        accounting.abandonPending();
        reportLosses(accounting.stats());
        // NodeSDK.shutdown() leaves instrumentations enabled: after shutdown outbound calls would still
        // get traceparent and CLIENT spans from the stopped provider.
        unpatchInstrumentations(instrumentations);
        stopRuntime();
        // The context manager stays registered (requests still run in their context); the rest of what
        // this run registered is unregistered so a restart can register its own. Globals registered
        // by someone else (a meter provider the service set up itself) stay.
        ownGlobals.delete('context');
        disableGlobals(ownGlobals);
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
 * Rejects when another OpenTelemetry setup (NodeSDK, auto-instrumentations,
 * Sentry, …) already registered a tracer provider, propagator or context
 * manager: isotrace could register none of its own, and would half-work (spans
 * without identity, identity baggage to every host). createIsotrace() plugs
 * isotrace into that setup instead.
 */
function rejectForeignSetup(): void {
  const registered = registeredGlobals();
  const foreign: string[] = [];
  if (registered.has('trace')) foreign.push('a tracer provider');
  if (registered.has('propagation')) foreign.push('a propagator');
  if (registered.has('context') && !(contextManager && isGlobalContextManager(contextManager))) foreign.push('a context manager');
  if (foreign.length === 0) return;
  throw new IsotraceSetupError(
    `startTracing() cannot set up OpenTelemetry: ${foreign.join(', ')} ${foreign.length > 1 ? 'are' : 'is'} already registered by another setup (NodeSDK, auto-instrumentations, Sentry, …). ` +
      "Plug isotrace into that setup instead: `const isotrace = createIsotrace({ serviceName, propagateTo })` from 'isotrace/otel', add isotrace.spanProcessor, isotrace.propagator and " +
      "isotrace.instrumentations to it, then `const tracing = await isotrace.attach()` (see docs/composing.md).",
    foreign.map((what) => what.replace(/^an? /, '')),
  );
}

function difference(all: ReadonlySet<OtelGlobal>, minus: ReadonlySet<OtelGlobal>): Set<OtelGlobal> {
  return new Set([...all].filter((name) => !minus.has(name)));
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
