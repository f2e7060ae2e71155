/** `isotrace/workers`: worker threads and child processes that continue the submitting request's context. */
export { createWorkerPool } from './internal/worker-pool.js';
export { defineWorkerTask } from './internal/worker-task.js';
export { contextToEnv, withContextFromEnv } from './internal/child-process.js';
export type { WorkerPool, WorkerPoolOptions, WorkerRunOptions } from './types.js';
export { WorkerTaskError } from '../errors/errors.js';
