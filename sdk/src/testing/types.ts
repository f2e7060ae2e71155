import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import type { Tracing, TracingOptions } from '../tracing/types.js';

/**
 * Options of setupTestTracing(): those of startTracing() but the exporter
 * (always the kit's own); serviceName defaults to `isotrace-test`,
 * auditCallbacks to `{ stacks: true }`.
 */
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

/**
 * What setupTestTracing() returns: the kit, ready on return (set up
 * synchronously), that can also be awaited (`await setupTestTracing()` gives
 * the same kit). A set-up that fails returns a rejected promise in its place.
 */
export interface StartedTestTracing extends TestTracing, PromiseLike<TestTracing> {}

type Hook = (fn: () => unknown) => void;

/** The test runner's hooks useTestTracing() registers with. */
export interface TestHooks {
  beforeAll: Hook;
  afterAll: Hook;
  beforeEach: Hook;
}

/** Options of useTestTracing(): setupTestTracing()'s, and the hooks to register with. */
export interface UseTestTracingOptions extends TestTracingOptions {
  /** Default: vitest's, when running under vitest; else the runner's global hooks (jest, vitest `globals: true`). */
  hooks?: TestHooks;
}
