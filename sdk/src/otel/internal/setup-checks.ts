import { randomBytes } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { context, createContextKey, defaultTextMapSetter, isSpanContextValid, propagation, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { BAGGAGE } from '../../context/internal/keys.js';
import { SetupProbe, withProbe } from './setup-probe.js';

/** One part of the host's setup that cannot give isolation, and how to add it. */
export interface SetupProblem {
  readonly part: 'context-manager' | 'propagator' | 'baggage' | 'span-processor';
  readonly message: string;
}

/** isotrace's parts, as attach() looks for them in the host's setup. */
export interface HostParts {
  readonly spanProcessor: object;
  readonly propagator: object;
}

/** Everything in the host's setup that keeps isotrace from isolating requests; empty when nothing does. */
export async function checkSetup(parts: HostParts): Promise<SetupProblem[]> {
  const problems: SetupProblem[] = [];
  if (!(await contextSurvivesAwait())) problems.push(CONTEXT_MANAGER_MISSING);
  problems.push(...propagatorProblems(parts.propagator));
  const spanProblem = spanProcessorProblem(parts.spanProcessor);
  if (spanProblem) problems.push(spanProblem);
  return problems;
}

const FLOW = createContextKey('isotrace.setup-probe.flow');

/**
 * Two flows run at once, each in its own context, and each must still see its
 * own after awaits that interleave them: what an AsyncLocalStorage-based
 * manager does, whichever copy of the package it comes from (NodeSDK's,
 * Sentry's subclass). No manager, or a synchronous stack, fails.
 */
async function contextSurvivesAwait(): Promise<boolean> {
  const flow = (id: number): Promise<boolean> =>
    context.with(ROOT_CONTEXT.setValue(FLOW, id), async () => {
      await nextTurn();
      await Promise.resolve();
      await nextTurn();
      return context.active().getValue(FLOW) === id;
    });
  const outcomes = await Promise.all([flow(1), flow(2)]);
  return outcomes.every(Boolean);
}

/**
 * Injects a probe context that carries isotrace identity baggage through the
 * registered propagator: isotrace's propagator notes the probe (and writes
 * nothing), so any baggage with identity in the carrier came from another
 * propagator, which would send it to every destination.
 */
function propagatorProblems(propagator: object): SetupProblem[] {
  const probe = new SetupProbe();
  const identity = propagation.createBaggage(Object.fromEntries(Object.values(BAGGAGE).map((key) => [key, { value: 'isotrace-setup-probe' }])));
  const probeContext = withProbe(propagation.setBaggage(trace.setSpanContext(ROOT_CONTEXT, sampledRemoteParent()), identity), probe);
  const carrier: Record<string, string> = {};
  propagation.inject(probeContext, carrier, defaultTextMapSetter);
  const problems: SetupProblem[] = [];
  if (!probe.saw(propagator)) problems.push(PROPAGATOR_MISSING);
  const written = Object.entries(carrier).filter(([header]) => header.toLowerCase() === 'baggage').map(([, value]) => value);
  if (written.some((value) => value.includes('isotrace.'))) problems.push(FOREIGN_BAGGAGE);
  return problems;
}

/**
 * Starts a span through the global tracer under a sampled parent, in a probe
 * context: isotrace's processor notes it when it runs on the active provider.
 * The span is never ended, so no exporter ever sees it.
 */
function spanProcessorProblem(spanProcessor: object): SetupProblem | undefined {
  const probe = new SetupProbe();
  const parent = sampledRemoteParent();
  const span = trace.getTracer('isotrace-setup-probe').startSpan('isotrace setup probe', {}, withProbe(trace.setSpanContext(ROOT_CONTEXT, parent), probe));
  if (probe.saw(spanProcessor)) return undefined;
  // Without a provider the API hands back the parent's own context: no span was made at all.
  if (!isSpanContextValid(span.spanContext()) || span.spanContext().spanId === parent.spanId) return NO_TRACER_PROVIDER;
  if (!span.isRecording()) return NOTHING_RECORDED;
  return SPAN_PROCESSOR_MISSING;
}

function sampledRemoteParent(): { traceId: string; spanId: string; traceFlags: number; isRemote: boolean } {
  return { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), traceFlags: TraceFlags.SAMPLED, isRemote: true };
}

const CONTEXT_MANAGER_MISSING: SetupProblem = {
  part: 'context-manager',
  message:
    'context manager: the registered one does not keep each request’s context across `await` (none is registered, or it is not AsyncLocalStorage-based), ' +
    'so requests could see each other’s context. Register one: new NodeSDK({ contextManager: new AsyncLocalStorageContextManager() }) (NodeSDK’s default), ' +
    'or context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable()).',
};

const PROPAGATOR_MISSING: SetupProblem = {
  part: 'propagator',
  message:
    'propagator: isotrace’s propagator is not in effect, so isotrace cannot decide where identity baggage goes. Register it: ' +
    'new NodeSDK({ textMapPropagator: isotrace.propagator }), or inside a composite: new CompositePropagator({ propagators: [isotrace.propagator, yours] }). ' +
    'Under `--import @opentelemetry/auto-instrumentations-node/register` it cannot be (see docs/composing.md for the set-up that replaces it).',
};

const FOREIGN_BAGGAGE: SetupProblem = {
  part: 'baggage',
  message:
    'baggage: another registered propagator writes W3C baggage, request identity included, to every destination (a W3CBaggagePropagator, ' +
    "'baggage' in OTEL_PROPAGATORS, NodeSDK’s default propagator, a vendor propagator that copies baggage). Remove it: isotrace.propagator already " +
    'sends baggage, to the propagateTo destinations only.',
};

const SPAN_PROCESSOR_MISSING: SetupProblem = {
  part: 'span-processor',
  message:
    'span processor: isotrace’s span processor is not registered on the active tracer provider, so spans would carry no request identity. ' +
    'Add it before your exporting processors: new NodeSDK({ spanProcessors: [isotrace.spanProcessor, new BatchSpanProcessor(exporter)] }).',
};

const NO_TRACER_PROVIDER: SetupProblem = {
  part: 'span-processor',
  message:
    'span processor: no tracer provider is registered. Start your OpenTelemetry SDK with isotrace.spanProcessor in its spanProcessors (sdk.start()) before attach().',
};

const NOTHING_RECORDED: SetupProblem = {
  part: 'span-processor',
  message:
    'span processor: the active tracer provider records no span, not even under a sampled parent (its sampler drops everything), ' +
    'so isotrace’s span processor cannot be verified. Use a sampler that records sampled traces (ParentBasedSampler, NodeSDK’s default).',
};
