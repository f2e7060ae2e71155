/** `isotrace/otel`: isotrace inside a service's own OpenTelemetry setup (NodeSDK, auto-instrumentations, Sentry, LLM observability). */
export { createIsotrace } from './internal/create-isotrace.js';
export type { Isotrace, IsotraceOptions } from './types.js';
export { IsotraceSetupError } from '../errors/errors.js';
