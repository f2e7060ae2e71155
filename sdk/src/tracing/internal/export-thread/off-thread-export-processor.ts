import { diag, TraceFlags } from '@opentelemetry/api';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace';
import type { Worker as WorkerThread } from 'node:worker_threads';
import type { ExportAccounting } from '../export-accounting.js';
import { reportOnce } from '../report.js';
import { CompactDictionary } from './compact-span.js';
import { handOverCapacity } from './hand-over.js';
import type { ExportThreadSettings, FromExportThread, ToExportThread } from './messages.js';
import { SpanBatchWriter } from './span-batch.js';

// The builtin, not its ES module view, as export-agents.ts does: only a process that starts tracing loads it.
const { Worker } = process.getBuiltinModule('node:worker_threads');

/**
 * Spans handed over in one message (fewer when the capacity is smaller): each
 * message wakes the thread, a fixed cost on the event loop worth spreading
 * over many spans; the batch processor's default export batch.
 */
const HANDOVER_SPANS = 512;
/** A partial hand-over waits at most this long (the thread's batcher then waits for its own schedule). */
const HANDOVER_DELAY_MS = 20;

/** The export thread's entry, beside this file: the built `.js`, or the `.ts` source when isotrace runs from source. */
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './export-worker.ts' : './export-worker.js', import.meta.url);

/**
 * The span processor of `exporter: 'otlp'`: exports off the event loop. Each
 * sampled span that ends is written in compact form (no OTLP objects) into a
 * buffer that is handed over (transferred, not copied: span-batch.ts), in
 * batches, to a worker thread that batches, serializes and
 * sends them as the in-thread pipeline did (the batch processor's rules,
 * OpenTelemetry's OTLP/HTTP transport, ExportAccounting's back-off and counts).
 *
 * Back-pressure: every span not yet in an export (waiting here, on its way,
 * or queued in the thread) counts against handOverCapacity(), so a thread
 * that falls behind (or stops answering) costs dropped spans, counted here,
 * never unbounded memory. The thread's counts come back in messages and are
 * written to `accounting`, so stats() reads as before (dropped: ended,
 * neither exported nor failed).
 *
 * forceFlush() and shutdown() are round trips bounded by flushTimeoutMs; after
 * shutdown the thread is terminated. The thread is unref'd: it never keeps
 * the process alive.
 */
export class OffThreadExportProcessor implements SpanProcessor {
  readonly #worker: WorkerThread;
  readonly #accounting: ExportAccounting;
  readonly #flushTimeoutMs: number;
  readonly #capacity: number;
  readonly #handOverSpans: number;
  readonly #dictionary = new CompactDictionary();
  readonly #batch = new SpanBatchWriter(this.#dictionary);
  #timer: NodeJS.Timeout | undefined;
  /** Spans posted to the thread, and how many of them have left its queue (into an export). */
  #posted = 0;
  #taken = 0;
  readonly #waiting = new Map<number, () => void>();
  #nextId = 0;
  /** Set once the thread is gone (shut down, terminated or failed): spans that end afterwards are dropped. */
  #closed = false;

  /**
   * Starts the thread; throws when it cannot be created (the caller then
   * exports in-thread). `workerUrl` is the thread's script (another only in
   * tests: one that never answers).
   */
  constructor(settings: ExportThreadSettings, accounting: ExportAccounting, flushTimeoutMs: number, workerUrl: URL = WORKER_URL) {
    this.#accounting = accounting;
    this.#flushTimeoutMs = flushTimeoutMs;
    this.#capacity = handOverCapacity(settings.batch);
    this.#handOverSpans = Math.min(HANDOVER_SPANS, this.#capacity);
    this.#worker = new Worker(workerUrl, { workerData: settings, stdout: false, stderr: false });
    this.#worker.unref();
    this.#worker.on('message', (message: FromExportThread) => this.#receive(message));
    this.#worker.on('error', (error) => this.#lost('the export thread failed; spans are no longer exported.', error));
    this.#worker.on('exit', (code) => this.#lost(`the export thread exited (code ${code}); spans are no longer exported.`));
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if (this.#closed || (span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    // Full: the span is dropped, counted in stats() as ended but neither exported nor failed.
    if (this.#batch.count + this.#posted - this.#taken >= this.#capacity) return;
    // A span whose data throws when read is dropped (counted), never half-written.
    if (!this.#batch.write(span)) {
      reportOnce('export-thread-unreadable-span', 'could not read an ended span to hand it over to the export thread; it is dropped.');
      return;
    }
    if (this.#batch.count >= this.#handOverSpans) this.#handOver();
    else this.#timer ??= setTimeout(() => this.#handOver(), HANDOVER_DELAY_MS).unref();
  }

  /** Hands over what is buffered, then asks the thread to export everything it holds; resolves when it has, or after flushTimeoutMs. */
  async forceFlush(): Promise<void> {
    await this.#handOverAll();
    await this.#ask((id) => ({ kind: 'flush', id }), this.#flushTimeoutMs);
  }

  /**
   * Hands over what is buffered and asks the thread to flush and shut down,
   * then terminates it. The thread gives up on its exports a little before
   * flushTimeoutMs (counted as failed) so its final counts arrive in time;
   * a thread that never answers is terminated at the bound, its spans dropped.
   */
  async shutdown(): Promise<void> {
    if (this.#closed) return;
    const margin = Math.min(250, this.#flushTimeoutMs / 4);
    await this.#handOverAll();
    await this.#ask((id) => ({ kind: 'shutdown', id, withinMs: this.#flushTimeoutMs - 2 * margin }), this.#flushTimeoutMs - margin);
    this.#close();
    await this.#worker.terminate().catch(() => {});
  }

  #handOver(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed || this.#batch.count === 0) return;
    // A resource still settling its detected attributes: the batch waits for it (bounded by the capacity).
    if (this.#dictionary.settling) {
      void this.#dictionary.settled().then(() => this.#handOver());
      return;
    }
    const spans = this.#batch.take()!;
    const definitions = this.#dictionary.takeUnsent();
    this.#posted += spans.count;
    if (!this.#send(definitions ? { kind: 'spans', spans, definitions } : { kind: 'spans', spans }, [spans.bytes]) && definitions) {
      // Later spans may use what this batch defined: it goes with the next one.
      this.#dictionary.requeue(definitions);
    }
  }

  async #handOverAll(): Promise<void> {
    await this.#dictionary.settled();
    this.#handOver();
  }

  /** Posts the message (its `transfer` buffers moved, not copied); false when it could not be. */
  #send(message: ToExportThread, transfer: ArrayBuffer[] = []): boolean {
    try {
      this.#worker.postMessage(message, transfer);
      return true;
    } catch (error) {
      // An attribute value structured clone cannot copy (telemetry must never throw into the app): the batch is lost, counted as dropped.
      reportOnce('export-thread-post-failed', 'could not hand spans over to the export thread; they are dropped.', error);
      if (message.kind === 'spans') this.#posted -= message.spans.count;
      return false;
    }
  }

  /** Sends a request and waits for its answer, at most `ms` (an answer that never comes changes nothing). */
  #ask(request: (id: number) => ToExportThread, ms: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const id = this.#nextId++;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(answered, ms).unref();
      function answered(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#waiting.set(id, () => {
        this.#waiting.delete(id);
        answered();
      });
      this.#send(request(id));
    }).finally(() => this.#waiting.delete(id));
  }

  #receive(message: FromExportThread): void {
    if (this.#closed) return;
    switch (message.kind) {
      case 'counts':
        this.#taken = message.taken;
        this.#accounting.exported = message.exported;
        this.#accounting.failed = message.failed;
        if (message.buffers) this.#batch.recycle(message.buffers);
        return;
      case 'done':
        this.#waiting.get(message.id)?.();
        return;
      case 'report':
        // As an in-thread exporter would have told it (isotrace's own reports were made once in the thread).
        diag[message.level](message.message);
        return;
    }
  }

  #lost(message: string, error?: unknown): void {
    if (this.#closed) return;
    reportOnce('export-thread-lost', message, error);
    this.#close();
  }

  /** No more spans, counts or answers: stats() is final, and whoever waits is released. */
  #close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#batch.clear();
    for (const release of [...this.#waiting.values()]) release();
  }
}

/**
 * The off-thread processor for these settings, or undefined when no worker
 * thread can be started here (reported once; the caller then exports on the
 * event loop, as before).
 */
export function startOffThreadExport(settings: ExportThreadSettings, accounting: ExportAccounting, flushTimeoutMs: number): OffThreadExportProcessor | undefined {
  try {
    return new OffThreadExportProcessor(settings, accounting, flushTimeoutMs);
  } catch (error) {
    reportOnce('export-thread-unavailable', 'could not start the export thread; spans are exported on the main thread.', error);
    return undefined;
  }
}
