import { context, createContextKey, logs, metrics, propagation, ROOT_CONTEXT, trace, type ContextManager } from '@opentelemetry/api';

/** The OpenTelemetry API globals a setup can register. */
export type OtelGlobal = 'trace' | 'propagation' | 'context' | 'metrics' | 'logs';

const ALL_GLOBALS: readonly OtelGlobal[] = ['trace', 'propagation', 'context', 'metrics', 'logs'];

// Every copy of @opentelemetry/api 1.x registers its globals on this one object (that is how copies share them).
const API_REGISTRY = Symbol.for('opentelemetry.js.api.1');

/** Which globals are registered right now, by anyone (any copy of the API). */
export function registeredGlobals(): Set<OtelGlobal> {
  const registry = (globalThis as Record<symbol, Partial<Record<OtelGlobal, unknown>> | undefined>)[API_REGISTRY];
  return new Set(ALL_GLOBALS.filter((name) => registry?.[name] !== undefined));
}

/** Unregisters these globals, and only these: a host's own globals stay in place. */
export function disableGlobals(names: ReadonlySet<OtelGlobal>): void {
  if (names.has('trace')) trace.disable();
  if (names.has('propagation')) propagation.disable();
  if (names.has('metrics')) metrics.disable();
  if (names.has('logs')) logs.disable();
  if (names.has('context')) context.disable();
}

const OWNER_PROBE = createContextKey('isotrace.context-manager-owner-probe');

/** Whether `manager` is the registered global context manager: a context it activates is what the API sees as active. */
export function isGlobalContextManager(manager: ContextManager): boolean {
  const token = ROOT_CONTEXT.setValue(OWNER_PROBE, manager);
  return manager.with(token, () => context.active().getValue(OWNER_PROBE) === manager);
}
