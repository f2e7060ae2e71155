import { diag } from '@opentelemetry/api';
import { processState } from './runtime.js';

/**
 * Reports a telemetry problem to the OpenTelemetry diagnostic logger, once per
 * `kind` for each run of isotrace (a restarted isotrace reports afresh).
 */
export function reportOnce(kind: string, message: string, error?: unknown): void {
  let reported: Set<string> | undefined;
  try {
    reported = processState().reported;
  } catch {
    // An incompatible copy owns the process state (its callers throw that loudly): still report, never throw from here.
  }
  if (reported?.has(kind)) return;
  reported?.add(kind);
  diag.warn(`isotrace: ${message}`, ...(error === undefined ? [] : [error]));
}
