import { context, SpanKind, trace, type Context } from '@opentelemetry/api';
import { baggageIdentity, carriesIdentity, recordViolation, requestIdentity } from '../../audit/internal/runtime-audit.js';
import type { RequestContextImpl } from '../../context/internal/request-context.js';
import { recordError, requestContextOf } from '../../context/internal/request-scope.js';
import { runWithEventSink } from '../../events/internal/emit.js';
import { WorkerEventPort } from '../../events/internal/worker-events.js';
import { getRuntime } from '../../tracing/internal/runtime.js';
import { restoreContext } from './carrier.js';
import { unclonablePath } from './cloneable.js';
import { isEnvelope, REPLY, toErrorData, type TaskEnvelope, type TaskReply } from './envelope.js';
import { workerTracing } from './worker-tracing.js';

/**
 * Wraps a worker file's task function so it runs in the submitting request's
 * context: `getRequestContext()`, `getFromContext()`, `getSharedState()`,
 * `expandVariables()` and tool systems all see that request (a snapshot:
 * updateRequestContext() here changes only the worker's copy). Spans made in
 * the task are children of the caller's `worker.run` span and are exported by
 * the submitting thread. Progress events it emits (emitProgress(), tools'
 * `emit`) reach the submitting request's connection before pool.run()
 * resolves. When the task ends nothing of its request stays in the thread.
 * The task returns structured-clone data: a result holding a function, a
 * symbol or a promise fails it with a TypeError naming where.
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
  // Indexed, not destructured, as the submitting thread built it (see envelope.ts).
  const name = envelope[2];
  const eventPort = envelope[5];
  // Awaited only at the thread's first tasks: once set up, a task starts without a turn of the microtask queue.
  const tracing = workerTracing(envelope[4]);
  const forwarding = tracing instanceof Promise ? await tracing : tracing;
  const runtime = getRuntime('defineWorkerTask()');
  const parent = restoreContext(envelope[3], runtime.store);
  const span = runtime.tracer.startSpan(`worker.task ${name}`, { kind: SpanKind.INTERNAL, attributes: { 'isotrace.worker.task': name } }, parent);
  const request = requestContextOf(parent);
  const events = eventPort && request ? new WorkerEventPort(eventPort, request) : undefined;
  let ok = true;
  let outcome: unknown;
  try {
    // The task (and all it starts) runs in its context; this function's own continuation does not.
    const result = context.with(trace.setSpan(parent, span), startTask, undefined, parent, fn, envelope[1], request, events);
    outcome = isPromise(result) ? await result : result;
    const unclonable = unclonablePath(outcome);
    if (unclonable) throw new TypeError(`Worker task '${name}' returned a value that cannot be sent back to the submitting thread: ${unclonable} cannot be cloned. Return structured-clone data.`);
  } catch (error) {
    recordError(span, error);
    ok = false;
    outcome = toErrorData(error);
  } finally {
    span.end();
  }
  return [REPLY, ok, outcome, forwarding?.take() ?? [], events?.sent ?? 0, forwarding?.violations.take() ?? []] as TaskReply;
}

/** Runs in the task's context: the entry audits, then the task, with its progress events going to the submitting request. */
function startTask(parent: Context, fn: (task: unknown) => unknown, task: unknown, request: RequestContextImpl | undefined, events: WorkerEventPort | undefined): unknown {
  auditWorkerEntry(parent);
  // Events are counted where they are delivered: the submitting thread.
  return events ? runWithEventSink(request!, events, () => fn(task), { span: undefined, count: false }) : fn(task);
}

function isPromise(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null | undefined)?.then === 'function';
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
