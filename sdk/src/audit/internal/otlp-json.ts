import type { AuditSpan } from '../types.js';

// OTLP/JSON (what OTLP/HTTP JSON exporters send and Jaeger's /api/v3 returns) to audit spans.

// Read-only shapes: the audit only reads, so frozen or `readonly`-typed payloads are accepted too.
interface OtlpAnyValue {
  readonly stringValue?: string;
  readonly boolValue?: boolean;
  readonly intValue?: string | number;
  readonly doubleValue?: number;
  readonly arrayValue?: { readonly values?: readonly OtlpAnyValue[] };
  readonly kvlistValue?: { readonly values?: readonly OtlpKeyValue[] };
  readonly bytesValue?: string;
}
interface OtlpKeyValue {
  readonly key: string;
  readonly value?: OtlpAnyValue;
}
interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind?: number | string;
  readonly attributes?: readonly OtlpKeyValue[];
  readonly events?: ReadonlyArray<{ readonly name: string; readonly attributes?: readonly OtlpKeyValue[] }>;
}
interface OtlpResourceSpans {
  readonly resource?: { readonly attributes?: readonly OtlpKeyValue[] };
  readonly scopeSpans?: ReadonlyArray<{ readonly spans?: readonly OtlpSpan[] }>;
}

/** The OTLP/JSON trace payloads we read: an export request, or Jaeger's `{ result: … }` wrapper. */
export interface OtlpTracesJson {
  readonly resourceSpans?: readonly OtlpResourceSpans[];
  readonly result?: { readonly resourceSpans?: readonly OtlpResourceSpans[] };
}

/**
 * Converts OTLP/JSON traces (an OTLP/HTTP export body, or a Jaeger `/api/v3`
 * response) into spans for auditSpans(). Ids may be hex or base64; each span
 * records which (`idEncoding`), and keeps an id that is neither as written.
 * Throws a TypeError naming the place (e.g. `result.resourceSpans[0].scopeSpans`)
 * when the payload does not have the OTLP/JSON shape, rather than reading
 * a wrong shape as "no spans".
 */
export function spansFromOtlpJson(payload: OtlpTracesJson): AuditSpan[] {
  if (!isObject(payload)) throw new TypeError(`OTLP/JSON traces must be an object; got ${describe(payload)}`);
  const inResult = payload.resourceSpans === undefined && isObject(payload.result);
  const resourceSpansList = inResult ? payload.result?.resourceSpans : payload.resourceSpans;
  const path = inResult ? 'result.resourceSpans' : 'resourceSpans';
  const spans: AuditSpan[] = [];
  listAt(resourceSpansList, path).forEach((resourceSpans: OtlpResourceSpans, r) => {
    const at = `${path}[${r}]`;
    objectAt(resourceSpans, at);
    const resource = attributesOf(listAt(resourceSpans.resource?.attributes, `${at}.resource.attributes`));
    listAt(resourceSpans.scopeSpans, `${at}.scopeSpans`).forEach((scope: NonNullable<OtlpResourceSpans['scopeSpans']>[number], s) => {
      objectAt(scope, `${at}.scopeSpans[${s}]`);
      listAt(scope.spans, `${at}.scopeSpans[${s}].spans`).forEach((span: OtlpSpan, i) => {
        spans.push(toAuditSpan(span, `${at}.scopeSpans[${s}].spans[${i}]`, resource['service.name']));
      });
    });
  });
  return spans;
}

function toAuditSpan(span: OtlpSpan, at: string, serviceName: unknown): AuditSpan {
  objectAt(span, at);
  for (const field of ['traceId', 'spanId', 'name'] as const) {
    if (typeof span[field] !== 'string') throw new TypeError(`${at}.${field} must be a string; got ${describe(span[field])}`);
  }
  if (span.parentSpanId !== undefined && typeof span.parentSpanId !== 'string') throw new TypeError(`${at}.parentSpanId must be a string; got ${describe(span.parentSpanId)}`);
  const traceId = decodeId(span.traceId, 16);
  const spanId = decodeId(span.spanId, 8);
  const parent = span.parentSpanId ? decodeId(span.parentSpanId, 8) : undefined;
  const hasParent = parent !== undefined && !/^0+$/.test(parent.id);
  const encodings = new Set([traceId.encoding, spanId.encoding, ...(hasParent ? [parent.encoding] : [])]);
  return {
    traceId: traceId.id,
    spanId: spanId.id,
    parentSpanId: hasParent ? parent.id : undefined,
    name: span.name,
    attributes: attributesOf(listAt(span.attributes, `${at}.attributes`)),
    events: listAt(span.events, `${at}.events`).map((event: NonNullable<OtlpSpan['events']>[number], e) => {
      objectAt(event, `${at}.events[${e}]`);
      return { name: event.name, attributes: attributesOf(listAt(event.attributes, `${at}.events[${e}].attributes`)) };
    }),
    serviceName: typeof serviceName === 'string' ? serviceName : undefined,
    idEncoding: encodings.has('invalid') ? 'invalid' : encodings.size > 1 ? 'mixed' : traceId.encoding,
  };
}

export function attributesOf(list: readonly OtlpKeyValue[] | undefined): Record<string, unknown> {
  const attributes: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) attributes[key] = valueOf(value);
  return attributes;
}

function valueOf(value: OtlpAnyValue | undefined): unknown {
  if (!value) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(valueOf);
  if (value.kvlistValue) return attributesOf(value.kvlistValue.values);
  return value.bytesValue;
}

const HEX = /^[0-9a-f]+$/i;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * OTLP/JSON ids are hex; Jaeger versions and some gateways write base64 of
 * the raw bytes. The lengths never overlap (16 hex characters against 12 of
 * base64 for 8 bytes), so each id decodes one way; any other text is kept as
 * written and marked invalid.
 */
function decodeId(text: string, bytes: number): { id: string; encoding: 'hex' | 'base64' | 'invalid' } {
  if (text.length === bytes * 2 && HEX.test(text)) return { id: text.toLowerCase(), encoding: 'hex' };
  if (BASE64.test(text) && Buffer.byteLength(text, 'base64') === bytes) return { id: Buffer.from(text, 'base64').toString('hex'), encoding: 'base64' };
  return { id: text, encoding: 'invalid' };
}

function listAt<T>(value: readonly T[] | undefined, at: string): readonly T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new TypeError(`${at} must be an array; got ${describe(value)}`);
  return value;
}

function objectAt(value: unknown, at: string): void {
  if (!isObject(value)) throw new TypeError(`${at} must be an object; got ${describe(value)}`);
}

function isObject(value: unknown): value is Record<string, unknown> & OtlpTracesJson {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)?.slice(0, 40)}`;
}
