import type { Counter, Tracer } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { TracingNotStartedError } from '../../errors/errors.js';
import type { SharedStateStore, WorkerStoreRecipe } from '../../shared-state/types.js';
import type { PropagationTarget, RedactInfo } from '../types.js';

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
}

/** What a worker thread inherits from the process that submits its tasks (structured-clone safe). */
export interface WorkerSettings {
  serviceName: string;
  audit: 'record' | 'throw';
  /** False when the parent has a redact hook: functions cannot cross threads, so raw values must not be recorded there. */
  recordToolArguments: boolean;
  /** How workers open the SharedState store themselves; absent: through the submitting thread. */
  store?: WorkerStoreRecipe;
}

// isotrace's one process-wide handle (STYLE rule 2): settings, never request data.
let current: Runtime | undefined;

/** The running isotrace; throws TracingNotStartedError naming the caller when there is none. */
export function getRuntime(what: string): Runtime {
  if (!current) throw new TracingNotStartedError(what);
  return current;
}

export function tryGetRuntime(): Runtime | undefined {
  return current;
}

export function setRuntime(runtime: Runtime | undefined): void {
  current = runtime;
}
