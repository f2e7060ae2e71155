import type { Counter, Tracer } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { TracingNotStartedError } from '../../errors/errors.js';
import type { SharedStateStore, WorkerStoreRecipe } from '../../shared-state/types.js';
import type { PropagationTarget, RedactInfo } from '../types.js';
import type { PortablePolicy } from '../../propagation/internal/propagation-policy.js';
import type { RequestsInFlight } from './requests-in-flight.js';

/** The settings of a running isotrace, shared by every request of the process. */
export interface Runtime {
  readonly serviceName: string;
  readonly tracer: Tracer;
  readonly store: SharedStateStore;
  readonly audit: 'record' | 'throw';
  readonly propagateTo: readonly PropagationTarget[];
  readonly recordToolArguments: boolean;
  readonly redact: ((value: unknown, info: RedactInfo) => unknown) | undefined;
  /** `isotrace.isolation.violations`, labelled by `isotrace.audit.check`. */
  readonly violations: Counter;
  /** The process's resource (service.name, host, process), given to spans forwarded from worker threads. */
  readonly resource: Resource;
  /** Sends spans finished elsewhere (worker threads) through this process's export pipeline. */
  exportSpans(spans: readonly ReadableSpan[]): void;
  /** Settings a worker thread needs to trace like this process. */
  readonly workerSettings: WorkerSettings;
  /** The requests running under this runtime (absent in worker threads, which own nothing to release). */
  readonly requests?: RequestsInFlight;
  /** Releases what this runtime owns (its own MemoryStore) once its requests in flight have finished; called when a new startTracing() replaces it. */
  retire?(): void;
}

/** What a worker thread inherits from the process that submits its tasks (structured-clone safe). */
export interface WorkerSettings {
  serviceName: string;
  audit: 'record' | 'throw';
  /** False when the parent has a redact hook: functions cannot cross threads, so raw values must not be recorded there. */
  recordToolArguments: boolean;
  /** propagateTo as data (RegExps by source); with a predicate, which cannot cross threads, the worker sends baggage nowhere. */
  propagateTo?: PortablePolicy;
  /** How workers open the SharedState store themselves; absent: through the submitting thread. */
  store?: WorkerStoreRecipe;
}

// isotrace's one process-wide handle (STYLE rule 2): settings, never request data.
let current: Runtime | undefined;
// Whether `current` was shut down: it keeps serving requests, without telemetry, until a new startTracing() replaces it.
let stopped = false;

/**
 * The running isotrace, or the one shut down last (its requests are served without telemetry);
 * throws TracingNotStartedError naming the caller when isotrace was never started.
 */
export function getRuntime(what: string): Runtime {
  if (!current) throw new TracingNotStartedError(what);
  return current;
}

/** Like getRuntime(), but undefined when isotrace was never started. */
export function tryGetRuntime(): Runtime | undefined {
  return current;
}

/** The runtime only while isotrace runs: undefined before startTracing() and after shutdown(). */
export function runningRuntime(): Runtime | undefined {
  return stopped ? undefined : current;
}

/** Makes `runtime` the running one (a fresh start, or the same settings with a part replaced). */
export function setRuntime(runtime: Runtime | undefined): void {
  current = runtime;
  stopped = false;
}

/** Marks the current runtime shut down: it stays in place for the requests that still use it. */
export function stopRuntime(): void {
  stopped = true;
}
