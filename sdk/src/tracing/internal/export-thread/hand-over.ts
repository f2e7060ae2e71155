import type { ExportThreadSettings } from './messages.js';

/** OpenTelemetry's batch processor's default (OTEL_BSP_MAX_EXPORT_BATCH_SIZE). */
const DEFAULT_EXPORT_BATCH_SIZE = 512;

/**
 * How many spans may be on their way to an export at once, wherever they are
 * (waiting on the main thread, in the channel, queued in the export thread):
 * what an in-thread batch processor holds, its queue (maxQueueSize) and the
 * batch it is exporting. Beyond it the main thread drops spans (counted); the
 * thread's queue holds what it is sent, so it never drops any.
 */
export function handOverCapacity({ maxQueueSize, maxExportBatchSize = DEFAULT_EXPORT_BATCH_SIZE }: ExportThreadSettings['batch']): number {
  return maxQueueSize + Math.min(maxExportBatchSize, maxQueueSize);
}
