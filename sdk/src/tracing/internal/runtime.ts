import type { Counter, Tracer } from '@opentelemetry/api';
import { TracingNotStartedError } from '../../errors/errors.js';
import type { SharedStateStore } from '../../shared-state/types.js';
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
