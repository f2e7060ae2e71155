import type { Attributes, Span } from '@opentelemetry/api';

/** Attribute values isotrace has checked itself: non-empty strings, booleans, numbers it computed (a port, a status code). */
export type CheckedValue = string | boolean | number;

/**
 * The parts of the SDK's span (`SpanImpl` of @opentelemetry/sdk-trace 2.x and
 * 3.x) that its own setAttribute() works on.
 */
interface SdkSpanInternals {
  attributes?: Attributes;
  _attributesCount?: number;
  _spanLimits?: { attributeCountLimit?: number; attributeValueLengthLimit?: number };
}

/**
 * Where isotrace may write attributes it checked itself (the request identity,
 * checked once per request by withRequestContext; a tool's constant GenAI
 * attributes) straight into a recording SDK span, or undefined where it must
 * go through setAttribute().
 *
 * Why: the SDK's setAttribute() copies and validates each value (a WeakSet per
 * value), attributes given at start are validated twice (before and after
 * sampling), and on a span that isotrace stamps with five identity attributes
 * that is most of the span's cost. A direct write does what setAttribute()
 * does for a valid string, boolean or number: sets the key and counts a new one
 * against the attribute count limit. Where the SDK would do more (a value
 * length limit is set: it truncates), or the span is not the SDK's, the
 * public setAttribute() decides.
 */
export function directAttributes(span: Span): SdkSpanInternals | undefined {
  const sdk = span as unknown as SdkSpanInternals;
  const { attributes, _spanLimits: limits } = sdk;
  if (typeof attributes !== 'object' || attributes === null || typeof sdk._attributesCount !== 'number' || !span.isRecording()) return undefined;
  const lengthLimit = limits?.attributeValueLengthLimit;
  if (lengthLimit !== undefined && lengthLimit > 0 && lengthLimit !== Infinity) return undefined;
  return sdk;
}

/**
 * The attributes of a span `direct` allows writing to when `count` more fit
 * under its attribute count limit, else undefined. For writers with a fixed
 * set of keys, each written at a line of its own (see stampIdentity()).
 */
export function roomFor(direct: SdkSpanInternals | undefined, count: number): Attributes | undefined {
  if (direct === undefined) return undefined;
  const countLimit = direct._spanLimits?.attributeCountLimit;
  return countLimit === undefined || direct._attributesCount! + count <= countLimit ? direct.attributes : undefined;
}

/**
 * Sets one checked attribute; with `overwrite` false, only when the span does
 * not have it yet. `direct` is directAttributes(span), looked up once per span.
 */
export function putAttribute(span: Span, direct: SdkSpanInternals | undefined, key: string, value: CheckedValue, overwrite: boolean): void {
  // Anything but a string, boolean or number (a snapshot from elsewhere that lacks a field) is the SDK's to judge.
  if (direct === undefined || (typeof value !== 'string' && typeof value !== 'boolean' && typeof value !== 'number')) {
    if (overwrite || (span as unknown as SdkSpanInternals).attributes?.[key] === undefined) span.setAttribute(key, value);
    return;
  }
  const attributes = direct.attributes!;
  const existing = attributes[key];
  if (existing !== undefined) {
    if (overwrite) attributes[key] = value;
    return;
  }
  const countLimit = direct._spanLimits?.attributeCountLimit;
  // At the limit the SDK drops the attribute and counts it as dropped: let it.
  if (countLimit !== undefined && direct._attributesCount! >= countLimit) {
    span.setAttribute(key, value);
    return;
  }
  attributes[key] = value;
  direct._attributesCount!++;
}
