import type { AuditSpan, IsolationViolation } from '../types.js';

// Trace data the audit cannot trust: parent links are looked up by span id, so a
// duplicated or garbled id could attach a span to the wrong request span.

/**
 * The trace-data checks: `duplicate-span-id` for each span whose id another
 * span of its trace already has, `id-encoding` for each span with an id that
 * is neither hex nor base64 of the right length, and once per trace whose
 * spans mix encodings (data merged from different pipelines).
 */
export function traceDataViolations(all: readonly AuditSpan[], duplicates: ReadonlyArray<readonly [AuditSpan, AuditSpan]>): IsolationViolation[] {
  const found: IsolationViolation[] = duplicates.map(([span, first]) =>
    dataViolation('duplicate-span-id', span, `one span with id ${span.spanId} in trace ${span.traceId}`, `spans '${first.name}' and '${span.name}' both have it`),
  );
  const firstEncoding = new Map<string, AuditSpan>();
  const mixedTraces = new Set<string>();
  for (const span of all) {
    if (span.idEncoding === undefined) continue;
    if (span.idEncoding === 'invalid') {
      found.push(dataViolation('id-encoding', span, 'a 16-byte trace id and 8-byte span ids, in hex or base64', `trace id ${span.traceId}, span id ${span.spanId}, parent ${span.parentSpanId ?? '(none)'}`));
      continue;
    }
    const first = firstEncoding.get(span.traceId) ?? span;
    firstEncoding.set(span.traceId, first);
    const mixed = span.idEncoding === 'mixed' || span.idEncoding !== first.idEncoding;
    if (!mixed || mixedTraces.has(span.traceId)) continue;
    mixedTraces.add(span.traceId);
    found.push(dataViolation('id-encoding', span, `ids in one encoding (${first.idEncoding} like span ${first.spanId})`, `${span.idEncoding} ids`));
  }
  return found;
}

function dataViolation(check: 'duplicate-span-id' | 'id-encoding', span: AuditSpan, expected: string, actual: string): IsolationViolation {
  return { check, traceId: span.traceId, spanId: span.spanId, spanName: span.name, expected, actual };
}
