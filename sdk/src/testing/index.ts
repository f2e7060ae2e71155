/** `isotrace/testing`: test kit for asserting that nothing crosses between requests. */
export { setupTestTracing } from './internal/test-tracing.js';
export type { StartedTestTracing, TestHooks, TestTracing, TestTracingOptions, UseTestTracingOptions } from './types.js';
export { useTestTracing } from './internal/use-test-tracing.js';
export { expectNoCrossRequestLeakage } from './internal/expect-no-leakage.js';
export { auditSpans } from '../audit/internal/audit-spans.js';
export type { AuditableSpan } from '../audit/internal/audit-spans.js';
export { spansFromOtlpJson } from '../audit/internal/otlp-json.js';
export type { OtlpTracesJson } from '../audit/internal/otlp-json.js';
export type { AuditReport, AuditSpan, IsolationViolation, RuntimeCheck, AncestryCheck } from '../audit/types.js';
