import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { startTracingWith } from '../../tracing/internal/start-tracing.js';
import type { Tracing, TracingOptions } from '../../tracing/types.js';
import { ViolationReader } from './violation-reader.js';

/** What setupTestTracing() returns. */
export interface TestTracing {
  readonly tracing: Tracing;
  /** Every span finished since the start or the last reset(). */
  spans(): ReadableSpan[];
  /** Forgets the spans collected so far. */
  reset(): void;
  /** The `isotrace.isolation.violations` counter: for one check, or all. */
  violationCount(check?: string): Promise<number>;
  /** Stops isotrace (a later setupTestTracing() may start it again). */
  shutdown(): Promise<void>;
}

/**
 * Starts isotrace for a test file with an in-memory exporter that receives
 * each span synchronously when it ends, so `spans()` is complete as soon as
 * the code under test has finished. Takes the same options as startTracing()
 * (serviceName defaults to `isotrace-test`; the exporter is always in-memory).
 *
 * ```ts
 * const kit = await setupTestTracing();
 * await withRequestContext({ tenantId: 't1', userId: 'u1' }, handler);
 * expectNoCrossRequestLeakage(kit.spans());
 * ```
 */
export async function setupTestTracing(options: Partial<Omit<TracingOptions, 'exporter'>> = {}): Promise<TestTracing> {
  const exporter = new InMemorySpanExporter();
  const violations = new ViolationReader();
  const tracing = await startTracingWith({ serviceName: 'isotrace-test', ...options, exporter, metricReaders: [violations, ...(options.metricReaders ?? [])] }, 'synchronous');
  return {
    tracing,
    spans: () => exporter.getFinishedSpans(),
    reset: () => exporter.reset(),
    violationCount: (check) => violations.count(check),
    shutdown: () => tracing.shutdown(),
  };
}
