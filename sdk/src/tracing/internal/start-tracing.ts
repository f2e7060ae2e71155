import { context, createContextKey, diag, ROOT_CONTEXT, trace, type Counter } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import type * as MetricExporterModule from '@opentelemetry/exporter-metrics-otlp-http';
import type * as TraceExporterModule from '@opentelemetry/exporter-trace-otlp-http';
import type * as ResourcesModule from '@opentelemetry/resources';
import type { Resource } from '@opentelemetry/resources';
import type * as SdkMetricsModule from '@opentelemetry/sdk-metrics';
import type { IMetricReader } from '@opentelemetry/sdk-metrics';
import type * as SdkNodeModule from '@opentelemetry/sdk-node';
import type * as SdkTraceModule from '@opentelemetry/sdk-trace';
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import { startCallbackAudit } from '../../audit/internal/callback-audit.js';
import { IsotraceSetupError, TracingAlreadyStartedError } from '../../errors/errors.js';
import { outboundPropagator } from '../../propagation/internal/destination-baggage-propagator.js';
import type { ExportStats, StartedTracing, Tracing, TracingOptions } from '../types.js';
import { awaitable, failedStart } from './awaitable.js';
import { ExportAgents, type OtlpSignal } from './export-agents.js';
import { loadModule } from './load-module.js';
import { activateRuntime, createIsotraceParts, patchBuiltinHttpForEsm, unpatchInstrumentations } from './isotrace-parts.js';
import { disableGlobals, isGlobalContextManager, registeredGlobals, type OtelGlobal } from './otel-globals.js';
import { batchSettingsFromEnv, otlpTimeoutInEnv, reportUnsupportedOtlpProtocol, resolveServiceName, samplerFromEnv, sdkDisabled } from './otel-env.js';
import { processState, runningRuntime, stopRuntime, type Runtime } from './runtime.js';
import { StoppableSampler } from './stoppable-sampler.js';
import { ExportAccounting } from './export-accounting.js';
import { SynchronousExportProcessor } from './synchronous-export-processor.js';
import { startOffThreadExport } from './export-thread/off-thread-export-processor.js';
import { tracesProtocolFromEnv } from './export-thread/otlp-protocol.js';
import { validateOptions } from './validate-options.js';
import { withinTimeout } from './within-timeout.js';
import { ISOTRACE_SCOPE, ISOTRACE_VERSION } from '../../version.js';

const DEFAULT_FLUSH_TIMEOUT_MS = 5000;
// Loaded when startTracing() runs, as sdk-node is: `import 'isotrace'` (a worker thread's too) loads no SDK package.
const sdkTrace = (): typeof SdkTraceModule => loadModule('@opentelemetry/sdk-trace');
const resources = (): typeof ResourcesModule => loadModule('@opentelemetry/resources');
const DEFAULT_MAX_QUEUE_SIZE = 2048;

/** How spans leave the process: batched (production) or synchronously as each ends (tests). */
export type ExportMode = 'batch' | 'synchronous';

/** What the test kit adds to a start: processors that see every span start and end (sampled or not), and a tally of violations. */
export interface TestKitHooks {
  readonly observers: readonly SpanProcessor[];
  observeViolations(counter: Counter): Counter;
}

/**
 * Sets up OpenTelemetry for this process, once: async-local-storage context,
 * W3C traceparent and baggage propagation, the request-identity span
 * processor, and a batch processor in front of the chosen exporter. The
 * OTEL_* SDK variables apply, an option given here winning over its variable
 * (TracingOptions lists them); with OTEL_SDK_DISABLED=true it exports nothing
 * and registers only its context manager, so requests still run isolated.
 *
 * The work is done before it returns: the handle is usable at once, and can
 * also be awaited (`await startTracing(…)` gives the same handle). A start that
 * fails returns a rejected promise instead of the handle, never throws: with
 * TypeError naming a bad or unknown option, TracingAlreadyStartedError when
 * isotrace already runs (it may start again after shutdown()), and
 * IsotraceSetupError when another OpenTelemetry setup already registered a
 * tracer provider, propagator or context manager (plug isotrace into that
 * setup with createIsotrace() from 'isotrace/otel') or an incompatible copy of
 * isotrace is loaded. Its shutdown unregisters only the globals it registered itself.
 *
 * ```ts
 * const tracing = startTracing({ serviceName: 'agent-api', propagateTo: ['inventory.internal'] }); // or: await startTracing(…)
 * process.once('SIGTERM', async () => {
 *   await new Promise((resolve) => server.close(resolve)); // drain first: requests in flight finish, traced
 *   await tracing.shutdown();
 * });
 * ```
 */
export function startTracing(options: TracingOptions): StartedTracing {
  try {
    const tracing = startTracingWith(options, 'batch');
    return awaitable({ ...tracing }, tracing);
  } catch (error) {
    return failedStart(error);
  }
}

/**
 * startTracing()'s work, synchronously, with the export mode chosen
 * (setupTestTracing() exports synchronously and adds its hooks); throws what
 * startTracing() rejects with.
 */
export function startTracingWith(options: TracingOptions, mode: ExportMode, testKit?: TestKitHooks): Tracing {
  validateOptions(options);
  if (runningRuntime()) throw new TracingAlreadyStartedError();
  rejectForeignSetup();
  const serviceName = resolveServiceName(options)!;
  if (sdkDisabled()) {
    // The test kit must never pass an audit over spans it could not record.
    if (testKit) throw new IsotraceSetupError('setupTestTracing() cannot record spans with OTEL_SDK_DISABLED=true in the environment: unset it for the tests.', ['sdk']);
    return startWithoutTelemetry(options, serviceName);
  }
  return startPipeline(options, serviceName, mode, testKit);
}

/** What one run set up, for its handle to flush and undo. */
interface Pipeline {
  readonly serviceName: string;
  readonly flushTimeoutMs: number;
  readonly sdk: { shutdown(): Promise<void> };
  readonly sampler: StoppableSampler;
  readonly processors: readonly SpanProcessor[];
  readonly instrumentations: ReadonlyArray<{ disable(): void }>;
  readonly accounting: ExportAccounting;
  readonly agents: ExportAgents;
  readonly runtime: Runtime;
  /** The OpenTelemetry globals this run registered (never one someone else registered first). */
  readonly ownGlobals: Set<OtelGlobal>;
  readonly stopCallbackAudit: () => void;
}

function startPipeline(options: TracingOptions, serviceName: string, mode: ExportMode, testKit: TestKitHooks | undefined): Tracing {
  const registeredBefore = registeredGlobals();
  const flushTimeoutMs = options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS;
  const parts = createIsotraceParts(options);
  const accounting = new ExportAccounting();
  const agents = new ExportAgents();
  const exportProcessor = createExportProcessor(options, mode, accounting, agents);
  const processors: SpanProcessor[] = [parts.requestAttributes, ...(exportProcessor ? [exportProcessor] : []), ...(options.spanProcessors ?? []), ...(testKit?.observers ?? [])];
  const resource = createResource(options, serviceName);
  const instrumentations = [...parts.instrumentations, ...(options.instrumentations ?? []).flat()];
  const sampler = createSampler(options);
  // Loaded here, not at import: only a service that starts tracing pays for NodeSDK and its dependencies.
  const { NodeSDK } = loadModule<typeof SdkNodeModule>('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({
    resource,
    autoDetectResources: false,
    sampler,
    // null keeps the one already registered: NodeSDK skips registration for null, though its type leaves null out.
    contextManager: contextManagerToRegister() as AsyncLocalStorageContextManager,
    textMapPropagator: outboundPropagator(parts.baggage),
    spanProcessors: processors,
    logRecordProcessors: [],
    metricReaders: options.metricReaders ?? defaultMetricReaders(options, agents),
    // isotrace's own are outbound HTTP only: inbound requests get their SERVER span from httpRequestContext().
    instrumentations,
  });
  sdk.start();
  // registerInstrumentations() only enables instrumentations whose config says disabled; after a restart ours are merely off.
  for (const instrumentation of instrumentations) instrumentation.enable();
  if (options.instrumentHttp !== false) patchBuiltinHttpForEsm();

  const runtime = activateRuntime({ ...options, serviceName }, parts, {
    tracer: trace.getTracer(ISOTRACE_SCOPE, ISOTRACE_VERSION),
    resource,
    exportSpans: (spans) => {
      for (const span of spans) exportProcessor?.onEnd(span);
    },
    ...(testKit ? { observeViolations: (counter: Counter) => testKit.observeViolations(counter) } : {}),
  });
  const ownGlobals = difference(registeredGlobals(), registeredBefore);
  const stopCallbackAudit = startCallbackAudit(options.auditCallbacks);
  return pipelineHandle({ serviceName, flushTimeoutMs, sdk, sampler, processors, instrumentations, accounting, agents, runtime, ownGlobals, stopCallbackAudit });
}

/** The processor that exports: batched in production (OTEL_BSP_* apply), synchronous in tests; none with exporter 'none'. */
function createExportProcessor(options: TracingOptions, mode: ExportMode, accounting: ExportAccounting, agents: ExportAgents): SpanProcessor | undefined {
  // Defaults, then OTEL_BSP_* variables, then the options given in code.
  const settings = {
    maxQueueSize: DEFAULT_MAX_QUEUE_SIZE,
    exportTimeoutMillis: DEFAULT_FLUSH_TIMEOUT_MS,
    ...batchSettingsFromEnv(),
    ...(options.maxQueueSize === undefined ? {} : { maxQueueSize: options.maxQueueSize }),
    ...(options.flushTimeoutMs === undefined ? {} : { exportTimeoutMillis: options.flushTimeoutMs }),
  };
  if (mode === 'batch' && (options.exporter ?? 'otlp') === 'otlp') {
    // Off the event loop: a worker thread batches, serializes (OTLP protobuf, or JSON) and sends.
    const threadSettings = { protocol: tracesProtocolFromEnv(), ...otlpUrl(options.endpoint, 'v1/traces'), timeoutMillis: exportTimeoutMs(options, 'TRACES'), batch: settings };
    const offThread = startOffThreadExport(threadSettings, accounting, options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS);
    if (offThread) return accounting.wrapProcessor(offThread);
  }
  const chosen = createExporter(options, exportTimeoutMs(options, 'TRACES'), agents);
  const exporter = chosen && accounting.wrapExporter(chosen);
  if (!exporter) return undefined;
  if (mode === 'synchronous') return accounting.wrapProcessor(new SynchronousExportProcessor(exporter));
  return accounting.wrapProcessor(new (sdkTrace().BatchSpanProcessor)({ exporter, ...settings }));
}

/**
 * An OTLP export's timeout: flushTimeoutMs when given; else the exporter reads
 * OTEL_EXPORTER_OTLP_[<SIGNAL>_]TIMEOUT when set (undefined here); else the flush bound's default.
 */
function exportTimeoutMs(options: TracingOptions, signal: OtlpSignal): number | undefined {
  if (options.flushTimeoutMs !== undefined) return options.flushTimeoutMs;
  return otlpTimeoutInEnv(signal) ? undefined : DEFAULT_FLUSH_TIMEOUT_MS;
}

/**
 * The resource of every span, layered as NodeSDK layers it: the `resource`
 * option, then detected attributes and OTEL_RESOURCE_ATTRIBUTES /
 * OTEL_SERVICE_NAME, then the resolved service name.
 */
function createResource(options: TracingOptions, serviceName: string): Resource {
  const { defaultResource, detectResources, envDetector, hostDetector, osDetector, processDetector, resourceFromAttributes, serviceInstanceIdDetector } = resources();
  return defaultResource()
    .merge(options.resource ?? null)
    .merge(detectResources({ detectors: [hostDetector, osDetector, processDetector, serviceInstanceIdDetector, envDetector] }))
    .merge(resourceFromAttributes({ 'service.name': serviceName }));
}

/**
 * The `sampler` option, else OTEL_TRACES_SAMPLER, else parent-based always on.
 * Unsampled spans are still recorded (never exported): an outbound CLIENT span
 * must say where it goes for baggage to reach the propagateTo targets of
 * unsampled requests. Stopped at shutdown: nothing is recorded after it, but
 * requests keep valid trace ids.
 */
function createSampler(options: TracingOptions): StoppableSampler {
  const { AlwaysOnSampler, createAlwaysRecordSampler, ParentBasedSampler } = sdkTrace();
  const chosen = options.sampler ?? samplerFromEnv() ?? new ParentBasedSampler({ root: new AlwaysOnSampler() });
  return new StoppableSampler(createAlwaysRecordSampler(chosen));
}

function pipelineHandle(pipeline: Pipeline): Tracing {
  let stopping: Promise<void> | undefined;
  return {
    serviceName: pipeline.serviceName,
    stats: () => pipeline.accounting.stats(),
    forceFlush: () => withinTimeout(Promise.all(pipeline.processors.map((p) => p.forceFlush())), pipeline.flushTimeoutMs, 'forceFlush()'),
    shutdown: () => (stopping ??= stopPipeline(pipeline)),
  };
}

/**
 * Undoes at once, synchronously, everything process-wide a run set up, so a
 * new start may follow immediately (the test kit's next file does); then
 * flushes within flushTimeoutMs. Requests in flight, and requests after
 * shutdown, keep running (context, SharedState, tools) without telemetry: from
 * here on no span is recorded, and those still open are dropped when they end (counted).
 */
function stopPipeline(pipeline: Pipeline): Promise<void> {
  pipeline.sampler.stop();
  pipeline.stopCallbackAudit();
  // NodeSDK.shutdown() leaves instrumentations enabled: outbound calls would still get traceparent and CLIENT spans.
  unpatchInstrumentations(pipeline.instrumentations);
  stopRuntime(pipeline.runtime);
  // The context manager stays registered (requests still run in their context); the rest of what this
  // run registered is unregistered so a restart can register its own. Globals registered by someone
  // else (a meter provider the service set up itself) stay.
  pipeline.ownGlobals.delete('context');
  disableGlobals(pipeline.ownGlobals);
  return (async () => {
    await withinTimeout(pipeline.sdk.shutdown(), pipeline.flushTimeoutMs, 'shutdown()');
    // Exports still unanswered (a hung or trickling collector) were given up on: their sockets must not keep the process alive.
    pipeline.agents.close();
    pipeline.accounting.abandonPending();
    reportLosses(pipeline.accounting.stats());
  })();
}

/**
 * OTEL_SDK_DISABLED=true: no telemetry (no spans, metrics, propagator or
 * instrumentations) but requests, SharedState, tools and the run-time audits
 * work as after shutdown(): only the context manager is registered, and
 * request spans are valid but never recorded.
 */
function startWithoutTelemetry(options: TracingOptions, serviceName: string): Tracing {
  const manager = contextManagerToRegister();
  if (manager) context.setGlobalContextManager(manager.enable());
  const { AlwaysOffSampler, TracerProvider } = sdkTrace();
  const resource = resources().resourceFromAttributes({ 'service.name': serviceName });
  const provider = new TracerProvider({ resource, sampler: new AlwaysOffSampler() });
  const runtime = activateRuntime({ ...options, serviceName }, createIsotraceParts({ ...options, instrumentHttp: false }), {
    tracer: provider.getTracer(ISOTRACE_SCOPE, ISOTRACE_VERSION),
    resource,
    exportSpans: () => {},
  });
  const stopCallbackAudit = startCallbackAudit(options.auditCallbacks);
  let stopping: Promise<void> | undefined;
  return {
    serviceName,
    stats: () => ({ ended: 0, exported: 0, failed: 0, dropped: 0 }),
    forceFlush: async () => {},
    shutdown: () => {
      stopping ??= (async () => {
        stopCallbackAudit();
        stopRuntime(runtime);
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
  const { contextManager } = processState();
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

function createExporter(options: TracingOptions, timeoutMillis: number | undefined, agents: ExportAgents): SpanExporter | undefined {
  const choice = options.exporter ?? 'otlp';
  if (choice === 'none') return undefined;
  if (choice === 'console') return new (sdkTrace().ConsoleSpanExporter)();
  if (choice === 'otlp') {
    reportUnsupportedOtlpProtocol('TRACES');
    const { OTLPTraceExporter } = loadModule<typeof TraceExporterModule>('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter({ ...otlpUrl(options.endpoint, 'v1/traces'), timeoutMillis, httpAgentOptions: agents.factoryFor('TRACES', timeoutMillis) });
  }
  return choice;
}

/** Metrics follow traces: over OTLP when spans go over OTLP, else nowhere unless metricReaders is given. */
function defaultMetricReaders(options: TracingOptions, agents: ExportAgents): IMetricReader[] {
  if ((options.exporter ?? 'otlp') !== 'otlp') return [];
  reportUnsupportedOtlpProtocol('METRICS');
  const timeoutMillis = exportTimeoutMs(options, 'METRICS');
  const { OTLPMetricExporter } = loadModule<typeof MetricExporterModule>('@opentelemetry/exporter-metrics-otlp-http');
  const { PeriodicExportingMetricReader } = loadModule<typeof SdkMetricsModule>('@opentelemetry/sdk-metrics');
  const exporter = new OTLPMetricExporter({ ...otlpUrl(options.endpoint, 'v1/metrics'), timeoutMillis, httpAgentOptions: agents.factoryFor('METRICS', timeoutMillis) });
  return [new PeriodicExportingMetricReader({ exporter, exportTimeoutMillis: options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS })];
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

const PROBE = createContextKey('isotrace.context-manager-probe');

/**
 * A new context manager to register, or null while the one an earlier run
 * registered is still in place. One per process, on the process state: kept
 * registered after shutdown (requests in flight and later ones still run in
 * their context) and reused by a restart, so those requests never lose it.
 */
function contextManagerToRegister(): AsyncLocalStorageContextManager | null {
  const state = processState();
  if (state.contextManager && context.with(ROOT_CONTEXT.setValue(PROBE, true), () => context.active().getValue(PROBE) === true)) return null;
  const manager = new AsyncLocalStorageContextManager();
  state.contextManager = manager;
  return manager;
}
