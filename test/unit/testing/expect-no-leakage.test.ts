import { describe, it, expect } from 'vitest';
import { AssertionError } from 'node:assert';
import { expectNoCrossRequestLeakage, type AuditSpan } from 'isotrace/testing';

const TRACE = '0123456789abcdef0123456789abcdef';

const owner: AuditSpan = {
  traceId: TRACE,
  spanId: '1111111111111111',
  name: 'request',
  attributes: { 'isotrace.request_span': true, 'isotrace.request_id': 'r1', 'isotrace.tenant_id': 't1', 'user.id': 'u1' },
};

function child(name: string, tenantId: string): AuditSpan {
  return {
    traceId: TRACE,
    spanId: '2222222222222222',
    parentSpanId: owner.spanId,
    name,
    attributes: { 'isotrace.request_id': 'r1', 'isotrace.tenant_id': tenantId, 'user.id': 'u1' },
  };
}

function failureOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure');
}

describe('expectNoCrossRequestLeakage', () => {
  it('returns the report when nothing crossed', () => {
    const report = expectNoCrossRequestLeakage([owner, child('db.query', 't1')]);
    expect(report).toMatchObject({ ok: true, spans: 2, requests: 1 });
  });

  it('throws on a leak, listing trace id, span name, expected and actual', () => {
    const error = failureOf(() => expectNoCrossRequestLeakage([owner, child('db.query', 't-intruder')]));
    expect(error).toBeInstanceOf(AssertionError);
    expect(error.message).toContain(TRACE);
    expect(error.message).toContain('db.query');
    expect(error.message).toContain('ancestry.tenant_id');
    // expected: what the span carries (the request it belongs to); actual: the request it ran inside.
    expect(error.message).toMatch(/expected t-intruder\b/);
    expect(error.message).toMatch(/actual t1\b/);
  });

  it('throws when there are no request spans at all, so a run whose spans never arrived cannot pass', () => {
    expect(() => expectNoCrossRequestLeakage([])).toThrow(/no request spans/);
    expect(() => expectNoCrossRequestLeakage([child('orphan', 't1')])).toThrow(AssertionError);
  });

  it('lists every violation, bounded for very many', () => {
    const many = Array.from({ length: 60 }, (_, i) => ({ ...child(`leak-${i}`, `t-${i}`), spanId: String(i).padStart(16, '0') }));
    const error = failureOf(() => expectNoCrossRequestLeakage([owner, ...many]));
    expect(error.message).toContain('60 cross-request leak');
    expect(error.message).toContain('leak-0');
    expect(error.message).toContain('more');
  });
});
