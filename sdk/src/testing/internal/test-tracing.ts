import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { awaitable, failedStart } from '../../tracing/internal/awaitable.js';
import { processState } from '../../tracing/internal/runtime.js';
import { startTracingWith } from '../../tracing/internal/start-tracing.js';
import type { Tracing } from '../../tracing/types.js';
import type { StartedTestTracing, TestTracing, TestTracingOptions } from '../types.js';
import { RecordedSpans } from './recorded-spans.js';
import { ViolationReader } from './violation-reader.js';

/** What the process state keeps of a running kit: enough for the next setupTestTracing() to replace it. */
export interface TestKitHandle {
  /** Stops this kit for a new one, at once (its flush finishes in the background); a kit already shutting down just finishes. */
  replace(): void;
}

class TestKit implements TestTracing, TestKitHandle {
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
    if (!this.#stopping) {
      const state = processState();
      if (state.testKit === this) state.testKit = undefined;
      // tracing.shutdown() undoes everything process-wide before it returns; only its flush is awaited.
      this.#stopping = this.tracing.shutdown();
    }
    return this.#stopping;
  }

  replace(): void {
    if (!this.#stopping) this.#replaced = true;
    void this.shutdown();
  }
}

/**
 * Starts isotrace for a test file, recording every span in memory the moment
 * it ends (sampled or not), so `spans()` is complete as soon as the code
 * under test has finished. Takes the same options as startTracing()
 * (serviceName defaults to `isotrace-test`; the exporter is always the kit's).
 *
 * Set up synchronously: the kit is usable on return, and can also be awaited
 * (`await setupTestTracing()` gives the same kit). A kit still running from an
 * earlier set-up in this process (a test file that never called shutdown(),
 * under vitest `isolate: false`) is shut down first. Returns a rejected
 * promise, never throws: with TracingAlreadyStartedError when isotrace was
 * started by startTracing() rather than by a kit, and with IsotraceSetupError
 * when OTEL_SDK_DISABLED=true (a kit that records nothing would pass every
 * audit). Shut the kit down after the tests (useTestTracing() does all of this
 * for vitest).
 *
 * ```ts
 * const kit = setupTestTracing(); // or: await setupTestTracing()
 * await withRequestContext({ tenantId: 't1', userId: 'u1' }, handler);
 * expectNoCrossRequestLeakage(kit.spans());
 * await kit.shutdown();
 * ```
 */
export function setupTestTracing(options: TestTracingOptions = {}): StartedTestTracing {
  try {
    const kit = startKit(options);
    return awaitable(viewOf(kit), kit);
  } catch (error) {
    return failedStart(error);
  }
}

function startKit(options: TestTracingOptions): TestKit {
  const state = processState();
  state.testKit?.replace();
  const recorded = new RecordedSpans();
  const violations = new ViolationReader();
  const tracing = startTracingWith(
    { serviceName: 'isotrace-test', ...options, auditCallbacks: options.auditCallbacks ?? { stacks: true }, exporter: recorded.exporter, metricReaders: [violations, ...(options.metricReaders ?? [])] },
    'synchronous',
    {
      observers: [recorded.unsampled],
      // Counts each run-time violation as it happens, also those no span shows (no active or no recording span).
      observeViolations: (counter) => recorded.tallying(counter),
    },
  );
  const kit = new TestKit(tracing, recorded, violations);
  state.testKit = kit;
  return kit;
}

/** The kit's methods on a plain object (one that may get a `then`): the kit's private fields stay on the kit. */
function viewOf(kit: TestKit): TestTracing {
  return {
    tracing: kit.tracing,
    spans: () => kit.spans(),
    reset: () => kit.reset(),
    violationCount: (check) => kit.violationCount(check),
    shutdown: () => kit.shutdown(),
  };
}
