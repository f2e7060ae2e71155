/** What the demo prints at the end: the audit summary and one request's trace as a tree. */
import type { AuditReport, AuditSpan } from 'isotrace/testing';

export function auditSummary(report: AuditReport, spans: readonly AuditSpan[]): string[] {
  const count = (predicate: (span: AuditSpan) => boolean): number => spans.filter(predicate).length;
  const lines = [
    `Audit of ${report.spans} spans in ${report.traces} traces (both services):`,
    `  requests ${report.requests} (agent ${count((s) => isRequest(s) && s.serviceName !== 'inventory-service')}, inventory ${count((s) => isRequest(s) && s.serviceName === 'inventory-service')})` +
      `  tool calls ${report.toolSpans}  worker tasks ${count((s) => s.name.startsWith('worker.task'))}`,
  ];
  if (report.ok) {
    lines.push('  isolation: PASS, no span crossed between requests');
  } else {
    const byCheck = Object.entries(report.violationsByCheck).map(([check, n]) => `${check} ${n}`).join(', ');
    lines.push(`  isolation: ${report.violations.length} VIOLATIONS (${byCheck})`);
    for (const v of report.violations.slice(0, 5)) lines.push(`    ${v.check}: '${v.spanName}' expected ${v.expected}, actual ${v.actual} (trace ${v.traceId})`);
    if (report.violations.length > 5) lines.push(`    … and ${report.violations.length - 5} more`);
  }
  return lines;
}

/** A trace that shows every hop: a request whose tools reached a worker thread and the inventory service. */
export function showcaseTrace(spans: readonly AuditSpan[]): string | undefined {
  const byTrace = Map.groupBy(spans, (span) => span.traceId);
  for (const [traceId, members] of byTrace) {
    const hasWorker = members.some((s) => s.name.startsWith('worker.task'));
    const hasDownstream = members.some((s) => s.serviceName === 'inventory-service');
    if (hasWorker && hasDownstream) return traceId;
  }
  return undefined;
}

/** The trace as an indented tree: name, service, and who it ran for. */
export function traceTree(spans: readonly AuditSpan[], traceId: string): string[] {
  const members = spans.filter((span) => span.traceId === traceId);
  const ids = new Set(members.map((span) => span.spanId));
  const children = Map.groupBy(members, (span) => (span.parentSpanId && ids.has(span.parentSpanId) ? span.parentSpanId : 'root'));
  const lines: string[] = [];
  const walk = (span: AuditSpan, prefix: string, last: boolean, depth: number): void => {
    const who = `${String(span.attributes['isotrace.tenant_id'] ?? '-')}/${String(span.attributes['user.id'] ?? '-')}`;
    const branch = depth === 0 ? '' : last ? '└─ ' : '├─ ';
    lines.push(`${prefix}${branch}${span.name}  [${span.serviceName ?? '?'}] ${who}`);
    const kids = [...(children.get(span.spanId) ?? [])].sort((a, b) => a.name.localeCompare(b.name));
    kids.forEach((kid, i) => walk(kid, depth === 0 ? '' : `${prefix}${last ? '   ' : '│  '}`, i === kids.length - 1, depth + 1));
  };
  for (const root of children.get('root') ?? []) walk(root, '', true, 0);
  return lines;
}

function isRequest(span: AuditSpan): boolean {
  return span.attributes['isotrace.request_span'] === true;
}
