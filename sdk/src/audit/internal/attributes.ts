/** Attribute and event names of the run-time audits. */
export const AUDIT = {
  result: 'isotrace.audit.result',
  event: 'isotrace.isolation_violation',
  check: 'isotrace.audit.check',
  expected: 'isotrace.audit.expected',
  actual: 'isotrace.audit.actual',
  metric: 'isotrace.isolation.violations',
} as const;
