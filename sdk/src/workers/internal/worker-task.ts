import { context, SpanKind, trace } from '@opentelemetry/api';
import { baggageIdentity, carriesIdentity, recordViolation, requestIdentity } from '../../audit/internal/runtime-audit.js';
import { recordError, requestContextOf } from '../../context/internal/request-scope.js';
import { runWithEventSink } from '../../events/internal/emit.js';
import { WorkerEventPort } from '../../events/internal/worker-events.js';
import { getRuntime } from '../../tracing/internal/runtime.js';
import { restoreContext } from './carrier.js';
import { ENVELOPE, isEnvelope, toErrorData, type TaskEnvelope, type TaskReply } from './envelope.js';
import { ensureWorkerTracing } from './worker-tracing.js';

/**
 * Wraps a worker file's task function so it runs in the submitting request's
 * context: `getRequestContext()`, `getFromContext()`, `getSharedState()`,
 * `expandVariables()` and tool systems all see that request (a snapshot:
 * updateRequestContext() here changes only the worker's copy). Spans made in
 * the task are children of the caller's `worker.run` span and are exported by
 * the submitting thread. Progress events it emits (emitProgress(), tools'
 * `emit`) reach the submitting request's connection before pool.run()
 * resolves. When the task ends nothing of its request stays in the thread.
 * Export the result as the worker file's default (or a named) export:
 *
 * ```ts
 * // hash-worker.ts
 * export default defineWorkerTask(async ({ text }: { text: string }) => {
 *   const { tenantId } = getRequestContext();
 *   return { tenantId, digest: createHash('sha256').update(text).digest('hex') };
 * });
 * ```
 */
export function defineWorkerTask<T, R>(fn: (task: T) => R | Promise<R>): (envelope: T) => Promise<R> {
  if (typeof fn !== 'function') throw new TypeError('defineWorkerTask(fn): fn must be a function.');
  return (async (envelope: unknown) => {
    if (!isEnvelope(envelope)) return fn(envelope as T); // a plain piscina task: no context to restore
    return runEnvelope(envelope, fn as (task: unknown) => unknown);
  }) as (envelope: T) => Promise<R>;
}

async function runEnvelope(envelope: TaskEnvelope, fn: (task: unknown) => unknown): Promise<TaskReply> {
  const forwarding = await ensureWorkerTracing(envelope.settings, envelope.storeChannel);
  const runtime = getRuntime('defineWorkerTask()');
  const parent = restoreContext(envelope.carrier, runtime.store);
  const span = runtime.tracer.startSpan(`worker.task ${envelope.name}`, { kind: SpanKind.INTERNAL, attributes: { 'isotrace.worker.task': envelope.name } }, parent);
  const reply: TaskReply = { [ENVELOPE]: 1, ok: true, spans: [] };
  const request = requestContextOf(parent);
  const events = envelope.events && request ? new WorkerEventPort(envelope.events, request) : undefined;
  await context.with(trace.setSpan(parent, span), async () => {
    try {
      auditWorkerEntry(parent);
      // Events are counted where they are delivered: the submitting thread.
      reply.result = await (events ? runWithEventSink(request!, events, () => fn(envelope.task), { span: undefined, count: false }) : fn(envelope.task));
    } catch (error) {
      recordError(span, error);
      reply.ok = false;
      reply.error = toErrorData(error);
    } finally {
      span.end();
    }
  });
  if (events) reply.events = events.sent;
  reply.spans = forwarding?.take() ?? [];
  return reply;
}

/** Worker-entry audits: the snapshot belongs to the trace and baggage it arrived with. */
function auditWorkerEntry(parent: ReturnType<typeof restoreContext>): void {
  const request = requestContextOf(parent);
  if (!request) return;
  const span = trace.getActiveSpan();
  const traceId = trace.getSpanContext(parent)?.traceId;
  if (traceId !== request.traceId) recordViolation(span, 'trace', request.traceId, traceId ?? '(no trace)');
  if (!carriesIdentity(parent, request)) recordViolation(span, 'baggage', requestIdentity(request), baggageIdentity(parent));
}
