import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { startTracingWith } from '../../tracing/internal/start-tracing.js';
import { setRuntime, tryGetRuntime } from '../../tracing/internal/runtime.js';
import type { Tracing, TracingOptions } from '../../tracing/types.js';
import { RecordedSpans } from './recorded-spans.js';
import { ViolationReader } from './violation-reader.js';

/** Options of setupTestTracing(): those of startTracing() but the exporter (always the kit's own); serviceName defaults to `isotrace-test`, auditCallbacks to `{ stacks: true }`. */
export type TestTracingOptions = Partial<Omit<TracingOptions, 'exporter'>>;

/** What setupTestTracing() returns. */
export interface TestTracing {
  readonly tracing: Tracing;
  /**
   * Every span finished since the start or the last reset(), sampled or not
   * (a leak inside a request whose inbound trace is unsampled is still
   * audited). The list also carries the run-time violations counted since
   * then, so expectNoCrossRequestLeakage(kit.spans()) fails on those too.
   * Throws once a later setupTestTracing() has replaced this kit.
   */
  spans(): ReadableSpan[];
  /** Forgets the spans and run-time violations collected so far. */
  reset(): void;
  /** The `isotrace.isolation.violations` counter since the kit started (reset() does not clear it): for one check, or all. */
  violationCount(check?: string): Promise<number>;
  /** Stops isotrace (a later setupTestTracing() may start it again); runs once. */
  shutdown(): Promise<void>;
}

// The kit running in this process, if any: isotrace's one handle (STYLE rule 2), held by the kit.
// Test files that share a process (vitest `isolate: false`) then start clean even when one forgot shutdown().
let live: TestKit | undefined;

class TestKit implements TestTracing {
  readonly tracing: Tracing;
  readonly #recorded: RecordedSpans;
  readonly #violations: ViolationReader;
  #stopping: Promise<void> | undefined;
  #replaced = false;

  constructor(tracing: Tracing, recorded: RecordedSpans, violations: ViolationReader) {
    this.tracing = tracing;
    this.#recorded = recorded;
    this.#violations = violations;
  }

  spans(): ReadableSpan[] {
    if (this.#replaced) {
      // Fail closed: this kit no longer sees new spans, so its old ones must not pass for the current test's.
      throw new Error('This test kit was replaced by a later setupTestTracing() and no longer records spans: use the kit that call returned.');
    }
    return this.#recorded.spans();
  }

  reset(): void {
    this.#recorded.reset();
  }

  violationCount(check?: string): Promise<number> {
    return this.#violations.count(check);
  }

  shutdown(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.tracing.shutdown();
      if (live === this) live = undefined;
    })();
    return this.#stopping;
  }

  /** Stops this kit for a new one; a kit already shutting down just finishes. */
  async replace(): Promise<void> {
    if (!this.#stopping) this.#replaced = true;
    await this.shutdown();
  }
}

/**
 * Starts isotrace for a test file, recording every span in memory the moment
 * it ends (sampled or not), so `spans()` is complete as soon as the code
 * under test has finished. Takes the same options as startTracing()
 * (serviceName defaults to `isotrace-test`; the exporter is always the kit's).
 *
 * A kit still running from an earlier set-up in this process (a test file
 * that never called shutdown(), under vitest `isolate: false`) is shut down
 * first. Rejects with TracingAlreadyStartedError when isotrace was started by
 * startTracing() rather than by a kit. Shut the kit down after the tests
 * (useTestTracing() does all of this for vitest).
 *
 * ```ts
 * const kit = await setupTestTracing();
 * await withRequestContext({ tenantId: 't1', userId: 'u1' }, handler);
 * expectNoCrossRequestLeakage(kit.spans());
 * await kit.shutdown();
 * ```
 */
export async function setupTestTracing(options: TestTracingOptions = {}): Promise<TestTracing> {
  await live?.replace();
  const recorded = new RecordedSpans();
  const violations = new ViolationReader();
  const tracing = await startTracingWith(
    { serviceName: 'isotrace-test', ...options, auditCallbacks: options.auditCallbacks ?? { stacks: true }, exporter: recorded.exporter, metricReaders: [violations, ...(options.metricReaders ?? [])] },
    'synchronous',
    [recorded.unsampled],
  );
  // Counts each run-time violation as it happens, also those no span shows (no active or no recording span).
  const runtime = tryGetRuntime();
  if (runtime) setRuntime({ ...runtime, violations: recorded.tallying(runtime.violations) });
  live = new TestKit(tracing, recorded, violations);
  return live;
}
