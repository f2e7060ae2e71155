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

  it('reports a child whose tenant differs from its request ancestor: expected is what the span carries, actual the request it ran inside', () => {
    const report = auditSpans([requestSpan('s1', r1), childSpan('s2', 's1', { ...r1, tenantId: 't2' })]);
    expect(report.ok).toBe(false);
    expect(report.violations).toEqual([
      {
        check: 'ancestry.tenant_id',
        traceId: TRACE,
        spanId: 's2',
        spanName: 'child s2',
        expected: 't2',
        actual: 't1',
        spanIdentity: { requestId: 'r1', tenantId: 't2', userId: 'u1' },
        ranInside: { requestId: 'r1', tenantId: 't1', userId: 'u1', spanId: 's1' },
      },
    ]);
    expect(report.violationsByCheck).toEqual({ 'ancestry.tenant_id': 1 });
  });

  it('compares a deep descendant with its nearest request ancestor, through plain spans', () => {
    const report = auditSpans([requestSpan('s1', r1), childSpan('s2', 's1', r1), childSpan('s3', 's2', { ...r1, requestId: 'r-other', userId: 'u9' })]);
    expect(report.violations.map((v) => [v.check, v.spanId, v.expected, v.actual]).sort()).toEqual([
      ['ancestry.request_id', 's3', 'r-other', 'r1'],
      ['ancestry.user_id', 's3', 'u9', 'u1'],
    ]);
  });

  it('reports a child that lacks the identity attributes', () => {
    const report = auditSpans([requestSpan('s1', r1), childSpan('s2', 's1', { requestId: 'r1', tenantId: 't1' })]);
    expect(report.violations).toHaveLength(1);
    expect(report.violations[0]).toMatchObject({ check: 'ancestry.user_id', spanId: 's2', expected: '(missing)', actual: 'u1' });
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
      ['ancestry.request_id', 'r1', 'r2'],
      ['ancestry.tenant_id', 't1', 't2'],
      ['ancestry.user_id', 'u1', 'u2'],
    ]);
  });

  it('reports a span carrying identity whose request span is missing: its parent is not among the spans (dropped, unsampled, not exported)', () => {
    const report = auditSpans([requestSpan('s1', r1), childSpan('s2', 'not-here', r2), childSpan('s3', 's2', r2)]);
    expect(report.ok).toBe(false);
    expect(report.violations.map((v) => [v.check, v.spanId, v.expected, v.actual])).toEqual([
      ['missing-request-span', 's2', 'request r2 (tenant t2, user u2)', 'no request span: span not-here above it is not in the trace (dropped, unsampled or not exported)'],
      ['missing-request-span', 's3', 'request r2 (tenant t2, user u2)', 'no request span: span not-here above it is not in the trace (dropped, unsampled or not exported)'],
    ]);
  });

  it('reports a span carrying identity in a trace with no request span at all, or as a root', () => {
    const noRequest = auditSpans([childSpan('s2', undefined, r2), childSpan('s3', 's2', { tenantId: 't2' })]);
    expect(noRequest.violationsByCheck).toEqual({ 'missing-request-span': 2 });
    expect(noRequest.violations[0]).toMatchObject({ spanId: 's2', actual: 'no request span: its trace has none above it', spanIdentity: { requestId: 'r2', tenantId: 't2', userId: 'u2' } });
  });

  it('reports parent links that loop as missing the request span, without hanging', () => {
    const report = auditSpans([childSpan('s2', 's3', r1), childSpan('s3', 's2', r1), childSpan('s4', 's4', r1)]);
    expect(report.violations.map((v) => [v.check, v.spanId, v.actual])).toEqual([
      ['missing-request-span', 's2', 'no request span: its parent links form a loop'],
      ['missing-request-span', 's3', 'no request span: its parent links form a loop'],
      ['missing-request-span', 's4', 'no request span: its parent links form a loop'],
    ]);
  });

  it('leaves spans without isotrace identity and without a request span alone (another library or service)', () => {
    const plain = childSpan('s2', 'remote', {}, { attributes: { 'http.method': 'GET' } });
    const userOnly = childSpan('s3', undefined, { userId: 'u1' });
    expect(auditSpans([plain, userOnly])).toMatchObject({ ok: true, spans: 2 });
  });

  it('counts isotrace.request_span given as the string "true" (other SDKs, transformed data) as a request span', () => {
    const stringMarker: AuditSpan = { ...requestSpan('s1', r1), attributes: { ...requestSpan('s1', r1).attributes, 'isotrace.request_span': 'true' } };
    const clean = auditSpans([stringMarker, childSpan('s2', 's1', r1)]);
    expect(clean).toMatchObject({ ok: true, requests: 1 });
    const leaked = auditSpans([stringMarker, childSpan('s2', 's1', r2)]);
    expect(leaked.violationsByCheck).toEqual({ 'ancestry.request_id': 1, 'ancestry.tenant_id': 1, 'ancestry.user_id': 1 });
  });

  it('matches parents within the same trace only', () => {
    const otherTrace: AuditSpan = { ...childSpan('s2', 's1', r2), traceId: 'b'.repeat(32) };
    expect(auditSpans([requestSpan('s1', r1), otherTrace]).violations).toEqual([expect.objectContaining({ check: 'missing-request-span', traceId: 'b'.repeat(32), spanId: 's2' })]);
  });

  it('reports two spans of one trace with the same span id, once per duplicate', () => {
    const report = auditSpans([requestSpan('s1', r1), childSpan('s2', 's1', r1), { ...childSpan('s2', 's1', r1), name: 'impostor' }]);
    expect(report.violations).toEqual([
      expect.objectContaining({ check: 'duplicate-span-id', spanId: 's2', spanName: 'impostor', expected: `one span with id s2 in trace ${TRACE}`, actual: "spans 'child s2' and 'impostor' both have it" }),
    ]);
  });

  it('audits a 20,000-span chain: the leak at its bottom is found against the request span at its top', () => {
    const depth = 20_000;
    const chain = [requestSpan('c0', r1)];
    for (let i = 1; i < depth; i++) chain.push(childSpan(`c${i}`, `c${i - 1}`, i === depth - 1 ? r2 : r1));
    // Deepest first: the walk from the first span climbs the whole chain.
    const report = auditSpans(chain.reverse());
    expect(report).toMatchObject({ spans: depth, requests: 1 });
    expect(report.violations.map((v) => [v.check, v.spanId, v.actual])).toEqual([
      ['ancestry.request_id', `c${depth - 1}`, 'r1'],
      ['ancestry.tenant_id', `c${depth - 1}`, 't1'],
      ['ancestry.user_id', `c${depth - 1}`, 'u1'],
    ]);
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
