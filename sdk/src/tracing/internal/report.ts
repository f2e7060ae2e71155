import { diag } from '@opentelemetry/api';

// Which problems were already reported: telemetry reports each kind once, never per call.
const reported = new Set<string>();

/** Reports a telemetry problem to the OpenTelemetry diagnostic logger, once per `kind`. */
export function reportOnce(kind: string, message: string, error?: unknown): void {
  if (reported.has(kind)) return;
  reported.add(kind);
  diag.warn(`isotrace: ${message}`, ...(error === undefined ? [] : [error]));
}
