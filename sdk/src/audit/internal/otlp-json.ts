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
 * response) into spans for auditSpans(). Ids may be hex or base64.
 */
export function spansFromOtlpJson(payload: OtlpTracesJson): AuditSpan[] {
  const spans: AuditSpan[] = [];
  for (const resourceSpans of payload.resourceSpans ?? payload.result?.resourceSpans ?? []) {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    for (const scope of resourceSpans.scopeSpans ?? []) {
      for (const span of scope.spans ?? []) {
        const parent = span.parentSpanId ? toHex(span.parentSpanId, 16) : '';
        spans.push({
          traceId: toHex(span.traceId, 32),
          spanId: toHex(span.spanId, 16),
          parentSpanId: parent && !/^0+$/.test(parent) ? parent : undefined,
          name: span.name,
          attributes: attributesOf(span.attributes),
          events: (span.events ?? []).map((event) => ({ name: event.name, attributes: attributesOf(event.attributes) })),
          serviceName: resource['service.name'] as string | undefined,
        });
      }
    }
  }
  return spans;
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

/** OTLP/JSON ids are hex; some gateways emit base64 of the raw bytes. */
function toHex(id: string, hexLength: number): string {
  if (id.length === hexLength && /^[0-9a-f]+$/i.test(id)) return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex').padStart(hexLength, '0');
}
