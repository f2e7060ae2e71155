/** What the in-memory examples print at the end: one request's span tree and the audit's counts. */
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import type { AuditReport } from 'isotrace/testing';

/** How printTree() shows each span. */
export interface TreeFormat {
  /** The span's line, after its indentation. */
  line(span: ReadableSpan): string;
  /** The order of a span's children; default: the order they were exported in. */
  order?(a: ReadableSpan, b: ReadableSpan): number;
}

/** Prints the span tree of the request `requestId` (nothing when its request span is not among `all`). */
export function printTree(all: readonly ReadableSpan[], requestId: string, format: TreeFormat): void {
  const root = all.find((span) => span.attributes['isotrace.request_span'] === true && span.attributes['isotrace.request_id'] === requestId);
  if (!root) return;
  const children = new Map<string, ReadableSpan[]>();
  for (const span of all) {
    const parent = span.parentSpanContext?.spanId;
    if (parent) children.set(parent, [...(children.get(parent) ?? []), span]);
  }
  console.log(`\ntrace ${root.spanContext().traceId} (tenant ${String(root.attributes['isotrace.tenant_id'])}):`);
  const visit = (span: ReadableSpan, depth: number): void => {
    console.log(`${'  '.repeat(depth)}${format.line(span)}`);
    const own = children.get(span.spanContext().spanId) ?? [];
    for (const child of format.order ? [...own].sort(format.order) : own) visit(child, depth + 1);
  };
  visit(root, 1);
}

/** `[tenant/user]`: who the span ran for, as its attributes say. */
export function ranFor(span: ReadableSpan): string {
  return `[${String(span.attributes['isotrace.tenant_id'])}/${String(span.attributes['user.id'])}]`;
}

/** The audit's counts on one line: `audit: 3 requests, 6 tool spans, 12 spans, 0 violations`. */
export function auditLine(report: AuditReport): string {
  return `audit: ${report.requests} requests, ${report.toolSpans} tool spans, ${report.spans} spans, ${report.violations.length} violations`;
}
