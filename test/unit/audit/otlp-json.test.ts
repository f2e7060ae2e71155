// spansFromOtlpJson(): OTLP/JSON (export bodies, Jaeger api/v3 answers) into audit spans. A wrong
// shape throws instead of reading as "no spans"; ids in hex or base64 decode alike, and malformed or
// mixed encodings reach the audit as trace-data violations.
import { describe, expect, it } from 'vitest';
import { auditSpans, spansFromOtlpJson, type OtlpTracesJson } from 'isotrace/testing';

const TRACE_HEX = '0af7651916cd43dd8448eb211c80319c';
const REQUEST_HEX = '1111111111111111';
const TOOL_HEX = '2222222222222222';
const base64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');

interface SpanIds {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
}

function otlp(...spans: Array<SpanIds & { request?: boolean }>): OtlpTracesJson {
  const identity = [
    { key: 'isotrace.request_id', value: { stringValue: 'r1' } },
    { key: 'isotrace.tenant_id', value: { stringValue: 't1' } },
    { key: 'user.id', value: { stringValue: 'u1' } },
  ];
  return {
    result: {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'agent-api' } }] },
          scopeSpans: [
            {
              spans: spans.map(({ request, ...ids }) => ({
                ...ids,
                name: request ? 'request' : 'execute_tool lookup',
                attributes: request ? [...identity, { key: 'isotrace.request_span', value: { boolValue: true } }] : identity,
              })),
            },
          ],
        },
      ],
    },
  };
}

describe('spansFromOtlpJson', () => {
  it('decodes hex and base64 ids to the same lowercase hex and records the encoding', () => {
    const hex = spansFromOtlpJson(otlp({ traceId: TRACE_HEX.toUpperCase(), spanId: REQUEST_HEX, request: true }, { traceId: TRACE_HEX, spanId: TOOL_HEX, parentSpanId: REQUEST_HEX }));
    const b64 = spansFromOtlpJson(otlp({ traceId: base64(TRACE_HEX), spanId: base64(REQUEST_HEX), request: true }, { traceId: base64(TRACE_HEX), spanId: base64(TOOL_HEX), parentSpanId: base64(REQUEST_HEX) }));

    const ids = (spans: typeof hex): unknown[] => spans.map((s) => [s.traceId, s.spanId, s.parentSpanId, s.serviceName]);
    expect(ids(hex)).toEqual([
      [TRACE_HEX, REQUEST_HEX, undefined, 'agent-api'],
      [TRACE_HEX, TOOL_HEX, REQUEST_HEX, 'agent-api'],
    ]);
    expect(ids(b64)).toEqual(ids(hex));
    expect(hex.map((s) => s.idEncoding)).toEqual(['hex', 'hex']);
    expect(b64.map((s) => s.idEncoding)).toEqual(['base64', 'base64']);
    expect(auditSpans(hex)).toMatchObject({ ok: true, requests: 1 });
    expect(auditSpans(b64)).toMatchObject({ ok: true, requests: 1 });
  });

  it('reports a trace whose spans mix hex and base64 ids once, as id-encoding', () => {
    const spans = spansFromOtlpJson(otlp({ traceId: TRACE_HEX, spanId: REQUEST_HEX, request: true }, { traceId: base64(TRACE_HEX), spanId: base64(TOOL_HEX), parentSpanId: base64(REQUEST_HEX) }));

    const report = auditSpans(spans);

    expect(report.violations).toEqual([expect.objectContaining({ check: 'id-encoding', spanId: TOOL_HEX, expected: `ids in one encoding (hex like span ${REQUEST_HEX})`, actual: 'base64 ids' })]);
  });

  it('keeps an id of the wrong length as written and reports it, instead of padding it into some other id', () => {
    const spans = spansFromOtlpJson(otlp({ traceId: TRACE_HEX, spanId: REQUEST_HEX, request: true }, { traceId: TRACE_HEX, spanId: 'abc', parentSpanId: REQUEST_HEX }));

    expect(spans[1]).toMatchObject({ spanId: 'abc', idEncoding: 'invalid' });
    expect(auditSpans(spans).violations).toEqual([expect.objectContaining({ check: 'id-encoding', spanId: 'abc', actual: `trace id ${TRACE_HEX}, span id abc, parent ${REQUEST_HEX}` })]);
  });

  it.each([
    { why: 'scopeSpans that is an object', payload: { result: { resourceSpans: [{ scopeSpans: {} }] } }, message: 'result.resourceSpans[0].scopeSpans must be an array; got an object' },
    { why: 'scopeSpans that is a string', payload: { result: { resourceSpans: [{ scopeSpans: 'spans' }] } }, message: 'result.resourceSpans[0].scopeSpans must be an array; got string "spans"' },
    { why: 'resourceSpans that is an object', payload: { resourceSpans: { spans: [] } }, message: 'resourceSpans must be an array; got an object' },
    { why: 'spans that is a number', payload: { resourceSpans: [{ scopeSpans: [{ spans: 3 }] }] }, message: 'resourceSpans[0].scopeSpans[0].spans must be an array; got number 3' },
    { why: 'a span without a string traceId', payload: { resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 5, spanId: 'a', name: 'x' }] }] }] }, message: 'resourceSpans[0].scopeSpans[0].spans[0].traceId must be a string; got number 5' },
    { why: 'a span that is null', payload: { resourceSpans: [{ scopeSpans: [{ spans: [null] }] }] }, message: 'resourceSpans[0].scopeSpans[0].spans[0] must be an object; got null' },
    { why: 'a payload that is an array', payload: [], message: 'OTLP/JSON traces must be an object; got an array' },
  ])('throws a TypeError naming the place for $why, never reading it as "no spans"', ({ payload, message }) => {
    expect(() => spansFromOtlpJson(payload as unknown as OtlpTracesJson)).toThrow(new TypeError(message));
  });
});
