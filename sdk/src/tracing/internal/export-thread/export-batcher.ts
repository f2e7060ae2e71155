import type { ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';

/** Exports under way at once: enough to overlap a few collector round trips, few enough to stay polite. */
const MAX_CONCURRENT_EXPORTS = 4;
const DEFAULT_EXPORT_BATCH_SIZE = 512;
const DEFAULT_SCHEDULED_DELAY_MS = 5000;

export interface ExportBatcherSettings {
  maxQueueSize: number;
  maxExportBatchSize?: number;
  scheduledDelayMillis?: number;
  exportTimeoutMillis: number;
}

/**
 * The export thread's batch processor: OpenTelemetry's BatchSpanProcessor
 * rules (a batch as soon as maxExportBatchSize spans wait, else after
 * scheduledDelayMillis; each export given up on after exportTimeoutMillis;
 * flush and shutdown export every batch at once), with up to four scheduled
 * exports under way instead of one. On the event loop the batch processor fills while an export
 * waits for the collector; here spans arrive in bursts whenever the thread is
 * scheduled, and one export at a time would make them wait (and the main
 * thread drop them) behind a single round trip. Its queue is not bounded: the
 * main thread sends no more spans than handOverCapacity() allows.
 *
 * `onTaken` is told how many spans each export takes from the queue.
 */
export class ExportBatcher implements SpanProcessor {
  readonly #exporter: SpanExporter;
  readonly #batchSize: number;
  readonly #delayMs: number;
  readonly #timeoutMs: number;
  readonly #onTaken: (spans: number) => void;
  #queue: ReadableSpan[] = [];
  readonly #exports = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #shutDown = false;

  constructor(exporter: SpanExporter, settings: ExportBatcherSettings, onTaken: (spans: number) => void) {
    this.#exporter = exporter;
    // As the batch processor does: a batch is never larger than the queue.
    this.#batchSize = Math.min(settings.maxExportBatchSize ?? DEFAULT_EXPORT_BATCH_SIZE, settings.maxQueueSize);
    this.#delayMs = settings.scheduledDelayMillis ?? DEFAULT_SCHEDULED_DELAY_MS;
    this.#timeoutMs = settings.exportTimeoutMillis;
    this.#onTaken = onTaken;
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if (this.#shutDown) return;
    this.#queue.push(span);
    this.#pump(false);
  }

  /** Exports every span queued, all batches at once (as the batch processor flushes), and resolves once those exports and any under way are answered or given up on. */
  async forceFlush(): Promise<void> {
    while (this.#queue.length > 0 || this.#exports.size > 0) {
      while (this.#queue.length > 0) this.#export();
      await Promise.all(this.#exports);
    }
  }

  async shutdown(): Promise<void> {
    this.#shutDown = true;
    await this.forceFlush();
    clearTimeout(this.#timer);
    await this.#exporter.shutdown();
  }

  /** Starts exports while there is room: full batches, or everything when `all` (the schedule or a flush). */
  #pump(all: boolean): void {
    while (this.#exports.size < MAX_CONCURRENT_EXPORTS && (this.#queue.length >= this.#batchSize || (all && this.#queue.length > 0))) this.#export();
    if (this.#queue.length === 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    } else {
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined;
        this.#pump(true);
      }, this.#delayMs).unref();
    }
  }

  #export(): void {
    const batch = this.#queue.length <= this.#batchSize ? this.#queue : this.#queue.slice(0, this.#batchSize);
    this.#queue = batch === this.#queue ? [] : this.#queue.slice(this.#batchSize);
    this.#onTaken(batch.length);
    const settled = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.#timeoutMs);
      const answered = (): void => {
        clearTimeout(timer);
        resolve();
      };
      try {
        this.#exporter.export(batch, answered);
      } catch {
        answered();
      }
    });
    this.#exports.add(settled);
    void settled.then(() => {
      this.#exports.delete(settled);
      this.#pump(false);
    });
  }
}
