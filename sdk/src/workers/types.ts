import type { MessagePort } from 'node:worker_threads';
import type { Context } from '@opentelemetry/api';

/** Options of createWorkerPool(): piscina's options; `filename` is the worker file (its exports wrap defineWorkerTask). */
export interface WorkerPoolOptions {
  /** Absolute path or file URL of the worker file. */
  filename: string | URL;
  minThreads?: number;
  maxThreads?: number;
  /** How long an idle thread above minThreads lives, in ms; default 60,000 (a new thread reloads OpenTelemetry). */
  idleTimeout?: number;
  maxQueue?: number | 'auto';
  concurrentTasksPerWorker?: number;
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number; codeRangeSizeMb?: number; stackSizeMb?: number };
  execArgv?: string[];
  env?: Record<string, string>;
  workerData?: unknown;
  closeTimeout?: number;
}

/** Options of one pool.run(). */
export interface WorkerRunOptions {
  /** The worker file's export to call (default: its default export); also names the `worker.run` span. */
  name?: string;
  transferList?: readonly (ArrayBuffer | MessagePort)[];
  signal?: AbortSignal;
  /**
   * Submit in this OpenTelemetry context instead of the active one (for queues
   * that submit later). Submitting another request's context from inside a
   * request records a `context-owner` violation.
   */
  context?: Context;
}

/** A pool of worker threads whose tasks run in the submitting request's context. */
export interface WorkerPool {
  /**
   * Runs `task` on a worker thread with the active context (trace, baggage,
   * request context snapshot) and resolves to its result. Rejects with the
   * task's own error (name, message and stack preserved), WorkerTaskError when
   * the worker thread dies, and TypeError naming the request-context value
   * that cannot be sent to a thread.
   */
  run<R = unknown>(task?: unknown, options?: WorkerRunOptions): Promise<R>;
  /** Finishes queued tasks, then stops the threads. */
  close(): Promise<void>;
  /** Stops the threads now; tasks in flight reject. */
  destroy(): Promise<void>;
  /** The worker threads (piscina's view), e.g. for resource checks. */
  readonly threads: number;
}
