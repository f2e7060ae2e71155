import { trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { startCallbackAudit } from '../../audit/internal/callback-audit.js';
import { IsotraceSetupError, TracingAlreadyStartedError } from '../../errors/errors.js';
import { activateRuntime, createIsotraceParts, outboundInstrumentations, patchBuiltinHttpForEsm, type IsotraceParts } from '../../tracing/internal/isotrace-parts.js';
import { reportOnce } from '../../tracing/internal/report.js';
import { resolveServiceName } from '../../tracing/internal/otel-env.js';
import { runningRuntime, stopRuntime } from '../../tracing/internal/runtime.js';
import { validateOptions } from '../../tracing/internal/validate-options.js';
import { withinTimeout } from '../../tracing/internal/within-timeout.js';
import type { Tracing } from '../../tracing/types.js';
import { ISOTRACE_SCOPE, ISOTRACE_VERSION } from '../../version.js';
import type { Isotrace, IsotraceOptions } from '../types.js';
import { HostPropagator } from './host-propagator.js';
import { HostSpanProcessor } from './host-span-processor.js';
import { checkSetup, type SetupProblem } from './setup-checks.js';

const DEFAULT_FLUSH_TIMEOUT_MS = 5000;

/**
 * isotrace's parts for a service that already runs OpenTelemetry (NodeSDK,
 * auto-instrumentations, Sentry, an LLM-observability span processor): give
 * `spanProcessor`, `propagator` and `instrumentations` to the host's SDK, start
 * it, then `await attach()`, which checks that the setup can isolate requests
 * and returns the same handle as startTracing(). Use startTracing() instead
 * when the service has no OpenTelemetry of its own.
 *
 * Throws a TypeError naming a bad or unknown option, and for an option the
 * host's setup owns (`exporter`, `endpoint`, `sampler`, `metricReaders`, `maxQueueSize`).
 *
 * ```ts
 * const isotrace = createIsotrace({ serviceName: 'agent-api', propagateTo: ['inventory.internal'] });
 * const sdk = new NodeSDK({
 *   spanProcessors: [isotrace.spanProcessor, new BatchSpanProcessor(exporter)],
 *   textMapPropagator: isotrace.propagator,
 *   instrumentations: [...isotrace.instrumentations, ...mine],
 * });
 * sdk.start();
 * const tracing = await isotrace.attach();
 * ```
 */
export function createIsotrace(options: IsotraceOptions): Isotrace {
  validateIsotraceOptions(options);
  const parts = createIsotraceParts(options);
  const propagator = new HostPropagator(parts.baggage);
  const spanProcessor = new HostSpanProcessor(parts.requestAttributes);
  return {
    spanProcessor,
    propagator,
    instrumentations: [...parts.instrumentations],
    attach: () => attach(options, parts, propagator, spanProcessor),
  };
}

/** Why each option startTracing() takes is the host's here, and where the host sets it. */
const HOST_OWNED: Readonly<Record<string, string>> = {
  exporter: "the host's span processors export: add your exporter's processor beside isotrace.spanProcessor in the host's spanProcessors",
  endpoint: "the host's exporters say where spans go: configure them (or OTEL_EXPORTER_OTLP_ENDPOINT)",
  sampler: "the host's tracer provider samples: set NodeSDK's `sampler`",
  metricReaders: "isotrace counts isotrace.isolation.violations on the host's meter provider: give NodeSDK your `metricReaders`",
  maxQueueSize: "the host's batch span processor bounds its own queue",
  instrumentations: "the host registers instrumentations: add yours beside isotrace.instrumentations in the host's `instrumentations`",
  spanProcessors: "the host's tracer provider runs span processors: add yours after isotrace.spanProcessor in the host's `spanProcessors`",
  resource: "the host's tracer provider owns the resource: set NodeSDK's `resource`",
};

function validateIsotraceOptions(options: IsotraceOptions): void {
  const owned = options !== null && typeof options === 'object' ? Object.keys(options).find((key) => Object.hasOwn(HOST_OWNED, key)) : undefined;
  if (owned !== undefined) throw new TypeError(`createIsotrace: option '${owned}' belongs to the host's OpenTelemetry setup: ${HOST_OWNED[owned]}.`);
  try {
    validateOptions(options);
  } catch (error) {
    // The same rules as startTracing(), named after the call the user made.
    if (error instanceof TypeError) throw new TypeError(error.message.replace(/^startTracing(\(options\))?/, (_, call: string | undefined) => `createIsotrace${call ?? ''}`));
    throw error;
  }
}

async function attach(options: IsotraceOptions, parts: IsotraceParts, propagator: HostPropagator, spanProcessor: HostSpanProcessor): Promise<Tracing> {
  if (runningRuntime()) throw new TracingAlreadyStartedError();
  const problems = await checkSetup({ spanProcessor, propagator });
  if (problems.length > 0) throw setupError(problems);
  if (runningRuntime()) throw new TracingAlreadyStartedError();

  enableInstrumentations(parts);
  const serviceName = resolveServiceName(options)!;
  const runtime = activateRuntime({ ...options, serviceName }, parts, {
    tracer: trace.getTracer(ISOTRACE_SCOPE, ISOTRACE_VERSION),
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    exportSpans: dropWorkerSpans,
  });
  propagator.start();
  const stopCallbackAudit = startCallbackAudit(options.auditCallbacks);
  const flushTimeoutMs = options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS;

  let stopping: Promise<void> | undefined;
  return {
    serviceName,
    // The host's exporters own export and its losses: isotrace exported nothing itself.
    stats: () => ({ ended: 0, exported: 0, failed: 0, dropped: 0 }),
    forceFlush: () => withinTimeout(flushActiveProvider(), flushTimeoutMs, 'forceFlush()'),
    shutdown: () => {
      // Only isotrace's own parts stop: no more baggage, no callback audit, no runtime for new starts.
      // The host's provider, propagator (traceparent), context manager and instrumentations go on.
      stopping ??= (async () => {
        propagator.stop();
        stopCallbackAudit();
        stopRuntime(runtime);
      })();
      return stopping;
    },
  };
}

function setupError(problems: readonly SetupProblem[]): IsotraceSetupError {
  return new IsotraceSetupError(
    `isotrace cannot isolate requests in this OpenTelemetry setup, so attach() refuses to start:\n${problems.map((problem) => `- ${problem.message}`).join('\n')}\nSee docs/composing.md.`,
    problems.map((problem) => problem.part),
  );
}

/**
 * Points the shared instrumentations' hooks at this isotrace's baggage
 * propagator (another createIsotrace() may have taken them) and enables them:
 * the host's registerInstrumentations() leaves an instrumentation that an
 * earlier isotrace disabled off, and without them no baggage reaches the
 * propagateTo destinations. They use the global (host's) tracer provider.
 */
function enableInstrumentations(parts: IsotraceParts): void {
  if (parts.instrumentations.length === 0) return;
  for (const instrumentation of outboundInstrumentations(parts.baggage)) instrumentation.enable();
  patchBuiltinHttpForEsm();
}

/** Spans from worker threads reach the exporters startTracing() owns; a host's pipeline has no entry for finished spans. */
function dropWorkerSpans(spans: readonly unknown[]): void {
  if (spans.length === 0) return;
  reportOnce('host-worker-spans', "spans finished in worker threads are not exported under a host's OpenTelemetry setup (createIsotrace): the host's tracer provider takes no finished spans.");
}

/** Flushes the host's tracer provider (NodeSDK's has forceFlush()), through the API's proxy. */
async function flushActiveProvider(): Promise<void> {
  const global = trace.getTracerProvider() as { getDelegate?(): unknown };
  const provider = (global.getDelegate?.() ?? global) as { forceFlush?(): Promise<void> };
  if (typeof provider.forceFlush === 'function') await provider.forceFlush();
}
