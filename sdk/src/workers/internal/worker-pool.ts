import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { MessagePort } from 'node:worker_threads';
import { context, SpanKind, type Context } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import type * as PiscinaModule from 'piscina';
import type { Piscina } from 'piscina';
import { AUDIT } from '../../audit/internal/attributes.js';
import { recordViolation } from '../../audit/internal/runtime-audit.js';
import { recordError, requestContextOf } from '../../context/internal/request-scope.js';
import { WorkerTaskError } from '../../errors/errors.js';
import { thrownText } from '../../errors/internal/thrown.js';
import { sinkOf } from '../../events/internal/emit.js';
import { WorkerEventRelay } from '../../events/internal/worker-events.js';
import { loadModule } from '../../tracing/internal/load-module.js';
import { tryGetRuntime, type Runtime } from '../../tracing/internal/runtime.js';
import type { WorkerPool, WorkerPoolOptions, WorkerRunOptions } from '../types.js';
import { captureCarrier, carriedValues } from './carrier.js';
import { ENVELOPE, fromErrorData, isReply, type TaskEnvelope, type ViolationCounts } from './envelope.js';
import { serveSharedState } from './shared-state-channel.js';
import { fromSpanData, type SpanData } from './span-transfer.js';
import { SetupEncoder } from './worker-setup.js';

/**
 * Creates a piscina worker pool whose tasks carry the submitting request's
 * context. Each `pool.run()` is a `worker.run <name>` span (kind INTERNAL: the
 * caller awaits the result) and the worker's spans are its children.
 * SharedState in the worker reaches the submitting thread's store.
 *
 * Throws TypeError naming a bad option.
 *
 * ```ts
 * const pool = createWorkerPool({ filename: new URL('./hash-worker.ts', import.meta.url) });
 * await withRequestContext({ tenantId, userId }, () => pool.run({ text }));
 * ```
 */
export function createWorkerPool(options: WorkerPoolOptions): WorkerPool {
  if (options === null || typeof options !== 'object') throw new TypeError('createWorkerPool(options): options must be an object with a filename.');
  const { filename, ...piscinaOptions } = options;
  if (!(typeof filename === 'string' && filename.length > 0) && !(filename instanceof URL)) throw new TypeError("createWorkerPool: option 'filename' must be a path or file URL of the worker file.");
  const path = filename instanceof URL || filename.startsWith('file:') ? fileURLToPath(filename) : filename;
  // Loaded when a pool is made, not imported: every worker file imports 'isotrace/workers', and its thread seldom makes a pool.
  const { Piscina } = loadModule<typeof PiscinaModule>('piscina');
  // Idle threads linger (piscina's default retires them at once): each new thread loads OpenTelemetry again.
  return new IsotraceWorkerPool(new Piscina({ idleTimeout: 60_000, ...piscinaOptions, filename: path }));
}

class IsotraceWorkerPool implements WorkerPool {
  readonly #piscina: Piscina;
  readonly #storeChannel = `isotrace.shared-state.${randomUUID()}`;
  readonly #setup = new SetupEncoder();
  #serving: { store: Runtime['store']; stop(): void } | undefined;
  /** Set while a thread that just died is failing its tasks (piscina destroys it, then rejects them, in one turn). */
  #threadDied: object | undefined;

  constructor(piscina: Piscina) {
    this.#piscina = piscina;
    piscina.on('workerDestroy', () => {
      const death = {};
      this.#threadDied = death;
      setImmediate(() => {
        if (this.#threadDied === death) this.#threadDied = undefined;
      });
    });
  }

  get threads(): number {
    return this.#piscina.threads.length;
  }

  async run<R = unknown>(task?: unknown, options: WorkerRunOptions = {}): Promise<R> {
    const name = options.name ?? 'default';
    const runtime = tryGetRuntime();
    const submitted = options.context ?? context.active();
    if (!runtime) return this.#piscina.run(task, piscinaRunOptions(options)) as Promise<R>;

    const span = runtime.tracer.startSpan(`worker.run ${name}`, { kind: SpanKind.INTERNAL, attributes: { 'isotrace.worker.task': name } }, submitted);
    let relay: WorkerEventRelay | undefined;
    try {
      if (options.context) auditSubmission(options.context, span);
      relay = eventRelay(submitted, span);
      const storeChannel = runtime.workerSettings.store ? undefined : this.#serveStore(runtime);
      const envelope: TaskEnvelope = [ENVELOPE, task, name, captureCarrier(submitted, span.spanContext()), this.#setup.encode(runtime.workerSettings, storeChannel), relay?.port];
      let reply: unknown;
      try {
        reply = await this.#piscina.run(envelope, piscinaRunOptions(options, relay?.port));
      } catch (error) {
        throw explainRunFailure(error, envelope, name, this.#threadDied !== undefined);
      }
      if (!isReply(reply)) return reply as R;
      // The task's events reach the request's connection before its result does.
      if (relay) await relay.drain(reply[4]);
      if (reply[3].length > 0) exportForwarded(runtime, reply[3]);
      if (reply[5].length > 0) countViolations(runtime, reply[5]);
      if (!reply[1]) throw fromErrorData(reply[2]);
      return reply[2] as R;
    } catch (error) {
      recordError(span, error);
      throw error;
    } finally {
      relay?.close();
      span.end();
    }
  }

  async close(): Promise<void> {
    await this.#piscina.close();
    this.#serving?.stop();
  }

  async destroy(): Promise<void> {
    await this.#piscina.destroy();
    this.#serving?.stop();
  }

  /** Serves the running isotrace's store to the pool's workers (again, after a restart brought a new store). */
  #serveStore(runtime: Runtime): string {
    if (this.#serving?.store !== runtime.store) {
      this.#serving?.stop();
      this.#serving = { store: runtime.store, stop: serveSharedState(this.#storeChannel, runtime.store) };
    }
    return this.#storeChannel;
  }
}

function piscinaRunOptions(options: WorkerRunOptions, eventPort?: MessagePort): { name?: string; transferList?: never; signal?: AbortSignal } {
  if (options.name === undefined && options.transferList === undefined && options.signal === undefined && eventPort === undefined) return NO_RUN_OPTIONS;
  const transferList = eventPort ? [...(options.transferList ?? []), eventPort] : options.transferList;
  return {
    ...(options.name === undefined ? {} : { name: options.name }),
    ...(transferList === undefined ? {} : { transferList: transferList as never }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };
}

/** piscina's run options when pool.run() has none (piscina only reads them). */
const NO_RUN_OPTIONS = Object.freeze({});

/** Submitting another request's context from inside a request is the cross-request hand-off the audit exists for. */
function auditSubmission(submitted: Context, span: ReturnType<Runtime['tracer']['startSpan']>): void {
  const active = requestContextOf(context.active());
  const target = requestContextOf(submitted);
  if (active && target && active.requestId !== target.requestId) {
    recordViolation(span, 'context-owner', `request ${active.requestId} (tenant ${active.tenantId})`, `request ${target.requestId} (tenant ${target.tenantId})`);
  }
}

/**
 * The relay for the task's progress events, when the submitted request has a
 * connection. Work submitted in another request's context (the `context-owner`
 * violation above) gets none: its events are undelivered, never sent to that
 * request's connection.
 */
function eventRelay(submitted: Context, span: ReturnType<Runtime['tracer']['startSpan']>): WorkerEventRelay | undefined {
  const target = requestContextOf(submitted);
  const active = requestContextOf(context.active());
  if (!target || (active && active.requestId !== target.requestId)) return undefined;
  const sink = sinkOf(submitted, target);
  return sink ? new WorkerEventRelay(sink, span) : undefined;
}

/** Exports the spans a task's worker finished. */
function exportForwarded(runtime: Runtime, forwarded: readonly SpanData[]): void {
  const spans: ReadableSpan[] = [];
  for (const data of forwarded) spans.push(fromSpanData(data, runtime.resource));
  runtime.exportSpans(spans);
}

/** Adds the violations the worker counted (it has no meter) to this thread's counter, by check. */
function countViolations(runtime: Runtime, counts: ViolationCounts): void {
  for (let i = 0; i < counts.length; i += 2) runtime.violations.add(counts[i + 1] as number, { [AUDIT.check]: counts[i] as string });
}

/** Turns piscina's failures into errors that say what happened. */
function explainRunFailure(error: unknown, envelope: TaskEnvelope, name: string, threadDied: boolean): Error {
  const err = error instanceof Error ? error : new Error(thrownText(error));
  if (err.name === 'DataCloneError') {
    const culprit = unclonableValue(envelope);
    return new TypeError(`pool.run(${name}): ${culprit} cannot be sent to a worker thread (${err.message}). Keep request-context values and tasks to structured-clone data.`, { cause: err });
  }
  // Only a thread that died is a WorkerTaskError: it exited, was terminated, or an
  // uncaught exception (e.g. thrown from a timer) ended it and piscina passes that
  // exception on. Cancellation, piscina's argument checks, a full queue or a
  // missing export are passed on as piscina said them. (The task's own errors
  // never get here: they come back in its reply.)
  const died = /worker exited|terminat/i.test(err.message) || (threadDied && err.name !== 'AbortError' && !/task queue/i.test(err.message));
  if (!died) return err;
  return new WorkerTaskError(`Worker thread died while running task '${name}': ${err.message}`, { cause: err });
}

function unclonableValue([, , , carrier]: TaskEnvelope): string {
  for (const [key, value] of Object.entries(carriedValues(carrier))) {
    try {
      structuredClone(value);
    } catch {
      return `request-context value '${key}'`;
    }
  }
  return 'the task';
}
