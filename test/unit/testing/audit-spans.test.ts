import { describe, it, expect } from 'vitest';
import { auditSpans, type AuditSpan } from 'isotrace/testing';

const TRACE = 'a'.repeat(32);

/** A request span (the owner its descendants are compared with). */
function requestSpan(spanId: string, identity: { requestId: string; tenantId: string; userId: string }, parentSpanId?: string): AuditSpan {
  return {
    traceId: TRACE,
    spanId,
    parentSpanId,
    name: `request ${identity.requestId}`,
    attributes: {
      'isotrace.request_span': true,
      'isotrace.request_id': identity.requestId,
      'isotrace.tenant_id': identity.tenantId,
      'user.id': identity.userId,
    },
  };
}

function childSpan(spanId: string, parentSpanId: string | undefined, identity: { requestId?: string; tenantId?: string; userId?: string }, extra: Partial<AuditSpan> = {}): AuditSpan {
  const attributes: Record<string, unknown> = {};
  if (identity.requestId !== undefined) attributes['isotrace.request_id'] = identity.requestId;
  if (identity.tenantId !== undefined) attributes['isotrace.tenant_id'] = identity.tenantId;
  if (identity.userId !== undefined) attributes['user.id'] = identity.userId;
  return { traceId: TRACE, spanId, parentSpanId, name: `child ${spanId}`, attributes, ...extra };
}

const r1 = { requestId: 'r1', tenantId: 't1', userId: 'u1' };
const r2 = { requestId: 'r2', tenantId: 't2', userId: 'u2' };

describe('auditSpans', () => {
  it('passes a clean request tree and counts what it saw', () => {
    const report = auditSpans([requestSpan('s1', r1), childSpan('s2', 's1', r1), childSpan('s3', 's2', r1)]);
    expect(report.ok).toBe(true);
    expect(report.violations).toEqual([]);
    expect(report).toMatchObject({ spans: 3, traces: 1, requests: 1, toolSpans: 0 });
  });

  it('reports a child whose tenant differs from its request ancestor, with expected and actual', () => {
    const report = auditSpans([requestSpan('s1', r1), childSpan('s2', 's1', { ...r1, tenantId: 't2' })]);
    expect(report.ok).toBe(false);
    expect(report.violations).toEqual([{ check: 'ancestry.tenant_id', traceId: TRACE, spanId: 's2', spanName: 'child s2', expected: 't1', actual: 't2' }]);
    expect(report.violationsByCheck).toEqual({ 'ancestry.tenant_id': 1 });
  });

  it('compares a deep descendant with its nearest request ancestor, through plain spans', () => {
    const report = auditSpans([requestSpan('s1', r1), childSpan('s2', 's1', r1), childSpan('s3', 's2', { ...r1, requestId: 'r-other', userId: 'u9' })]);
    expect(report.violations.map((v) => [v.check, v.spanId, v.expected, v.actual]).sort()).toEqual([
      ['ancestry.request_id', 's3', 'r1', 'r-other'],
      ['ancestry.user_id', 's3', 'u1', 'u9'],
    ]);
  });

  it('reports a child that lacks the identity attributes', () => {
    const report = auditSpans([requestSpan('s1', r1), childSpan('s2', 's1', { requestId: 'r1', tenantId: 't1' })]);
    expect(report.violations).toHaveLength(1);
    expect(report.violations[0]).toMatchObject({ check: 'ancestry.user_id', spanId: 's2', expected: 'u1' });
  });

  it('treats a nested request span as the owner of its own subtree', () => {
    const report = auditSpans([
      requestSpan('s1', r1),
      requestSpan('s2', r2, 's1'),
      childSpan('s3', 's2', r2),
      childSpan('s4', 's1', r1),
    ]);
    expect(report.ok).toBe(true);
    expect(report.requests).toBe(2);

    const leaked = auditSpans([requestSpan('s1', r1), requestSpan('s2', r2, 's1'), childSpan('s3', 's2', r1)]);
    expect(leaked.violations.map((v) => [v.check, v.expected, v.actual]).sort()).toEqual([
      ['ancestry.request_id', 'r2', 'r1'],
      ['ancestry.tenant_id', 't2', 't1'],
      ['ancestry.user_id', 'u2', 'u1'],
    ]);
  });

  it('does not compare a span whose parent is absent (a remote caller) or that has no parent', () => {
    const report = auditSpans([requestSpan('s1', r1), childSpan('s2', 'not-here', r2), childSpan('s3', undefined, r2)]);
    expect(report.ok).toBe(true);
  });

  it('matches parents within the same trace only', () => {
    const otherTrace: AuditSpan = { ...childSpan('s2', 's1', r2), traceId: 'b'.repeat(32) };
    expect(auditSpans([requestSpan('s1', r1), otherTrace]).ok).toBe(true);
  });

  it('reports a span carrying an isolation_violation event with its check, expected and actual', () => {
    const flagged = childSpan('s2', 's1', r1, {
      name: 'execute_tool search',
      events: [
        { name: 'some.other.event', attributes: {} },
        {
          name: 'isotrace.isolation_violation',
          attributes: { 'isotrace.audit.check': 'shared-state', 'isotrace.audit.expected': 't1/u1', 'isotrace.audit.actual': 't2/u2' },
        },
      ],
    });
    const report = auditSpans([requestSpan('s1', r1), flagged]);
    expect(report.violations).toEqual([{ check: 'shared-state', traceId: TRACE, spanId: 's2', spanName: 'execute_tool search', expected: 't1/u1', actual: 't2/u2' }]);
    expect(report.violationsByCheck).toEqual({ 'shared-state': 1 });
  });

  it('reports a recorded violation even on a span with no request ancestor', () => {
    const orphan = childSpan('s9', undefined, {}, { attributes: { 'isotrace.audit.result': 'violation' } });
    const report = auditSpans([orphan]);
    expect(report.ok).toBe(false);
    expect(report.violations).toHaveLength(1);
    expect(report.violations[0]?.spanId).toBe('s9');
  });

  it('counts tool spans and traces', () => {
    const tool = childSpan('s2', 's1', r1, { attributes: { ...childSpan('x', 's1', r1).attributes, 'gen_ai.operation.name': 'execute_tool' } });
    const second = { ...requestSpan('s1', r2), traceId: 'c'.repeat(32) };
    const report = auditSpans([requestSpan('s1', r1), tool, second]);
    expect(report).toMatchObject({ ok: true, spans: 3, traces: 2, requests: 2, toolSpans: 1 });
  });

  it('passes an empty input (expectNoCrossRequestLeakage is the one that refuses it)', () => {
    expect(auditSpans([])).toMatchObject({ ok: true, spans: 0, requests: 0 });
  });
});
