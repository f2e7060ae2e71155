import { context, SpanKind, trace } from '@opentelemetry/api';
import { baggageIdentity, carriesIdentity, recordViolation, requestIdentity } from '../../audit/internal/runtime-audit.js';
import { recordError, requestContextOf } from '../../context/internal/request-scope.js';
import { runWithEventSink } from '../../events/internal/emit.js';
import { WorkerEventPort } from '../../events/internal/worker-events.js';
import { getRuntime } from '../../tracing/internal/runtime.js';
import { restoreContext } from './carrier.js';
import { isEnvelope, REPLY, toErrorData, type TaskEnvelope, type TaskReply } from './envelope.js';
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
  // A plain piscina task (no envelope) has no context to restore.
  return ((envelope: unknown) => (isEnvelope(envelope) ? runEnvelope(envelope, fn as (task: unknown) => unknown) : runPlain(fn, envelope as T))) as (envelope: T) => Promise<R>;
}

async function runPlain<T, R>(fn: (task: T) => R | Promise<R>, task: T): Promise<R> {
  return fn(task);
}

async function runEnvelope(envelope: TaskEnvelope, fn: (task: unknown) => unknown): Promise<TaskReply> {
  const [, task, name, carrier, setup, eventPort] = envelope;
  const forwarding = await ensureWorkerTracing(setup);
  const runtime = getRuntime('defineWorkerTask()');
  const parent = restoreContext(carrier, runtime.store);
  const span = runtime.tracer.startSpan(`worker.task ${name}`, { kind: SpanKind.INTERNAL, attributes: { 'isotrace.worker.task': name } }, parent);
  const request = requestContextOf(parent);
  const events = eventPort && request ? new WorkerEventPort(eventPort, request) : undefined;
  let ok = true;
  let outcome: unknown;
  await context.with(trace.setSpan(parent, span), async () => {
    try {
      auditWorkerEntry(parent);
      // Events are counted where they are delivered: the submitting thread.
      outcome = await (events ? runWithEventSink(request!, events, () => fn(task), { span: undefined, count: false }) : fn(task));
    } catch (error) {
      recordError(span, error);
      ok = false;
      outcome = toErrorData(error);
    } finally {
      span.end();
    }
  });
  return [REPLY, ok, outcome, forwarding?.take() ?? [], events?.sent ?? 0] as TaskReply;
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
