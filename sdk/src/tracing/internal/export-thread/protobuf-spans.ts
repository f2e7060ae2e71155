import type { Attributes, AttributeValue, HrTime, Link, SpanStatus } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';

/*
 * An OTLP ExportTraceServiceRequest in protobuf, written in one pass: the
 * same bytes as @opentelemetry/otlp-transformer's ProtobufTraceSerializer
 * (same fields, same order, same defaults; a test compares them), for about
 * half its CPU time, which the export thread spends on every span. That
 * serializer measures the whole request first and then writes it; this one
 * writes once, reserving room for each length and moving the few messages
 * whose length needs more room than reserved.
 */

const SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE = 0x100;
const SPAN_FLAGS_CONTEXT_IS_REMOTE = 0x200;
const MAX_INT64 = 2 ** 63;
const NANOS_PER_SECOND = 1e9;
const TWO_POW_32 = 2 ** 32;

/** Encodes spans as ExportTraceServiceRequest, grouped by resource and scope (by identity, as OpenTelemetry's serializer groups them). */
export function serializeSpansAsProtobuf(spans: readonly ReadableSpan[], sizeHint = 64 * 1024): Uint8Array {
  return serializeTraceRequest(spans, sizeHint, (span) => span.resource, (span) => span.instrumentationScope, writeSpanFields);
}

/** Spans as ScopeSpans.spans fields (tag, length, Span message). */
export function writeSpanFields(writer: Writer, spans: readonly ReadableSpan[]): void {
  for (const span of spans) {
    writer.tag(2, 2);
    const start = writer.begin(2);
    writeSpan(writer, span);
    writer.end(start, 2);
  }
}

/**
 * An ExportTraceServiceRequest of spans in any form: `writeSpans` writes one
 * scope's spans as ScopeSpans.spans fields. Written into a new buffer of
 * `sizeHint` bytes, or into `buffer` (overwritten; a larger one replaces it
 * when it is too small).
 */
export function serializeTraceRequest<T>(spans: readonly T[], sizeHint: number | Buffer, resourceOf: (span: T) => Resource, scopeOf: (span: T) => unknown, writeSpans: (writer: Writer, spans: readonly T[]) => void): Uint8Array {
  const writer = new Writer(sizeHint);
  for (const [resource, scopes] of groupByResourceAndScope(spans, resourceOf, scopeOf)) {
    writer.tag(1, 2);
    const resourceSpans = writer.begin(3);
    writeResource(writer, resource);
    for (const scopeSpans of scopes.values()) {
      const scope = scopeOf(scopeSpans[0]!) as ReadableSpan['instrumentationScope'] & { attributes?: Attributes; droppedAttributesCount?: number };
      writer.tag(2, 2);
      const scopeStart = writer.begin(3);
      writeScope(writer, scope);
      writeSpans(writer, scopeSpans);
      if (scope.schemaUrl) writer.tag(3, 2).string(scope.schemaUrl);
      writer.end(scopeStart, 3);
    }
    if (resource.schemaUrl) writer.tag(3, 2).string(resource.schemaUrl);
    writer.end(resourceSpans, 3);
  }
  return writer.finish();
}

function groupByResourceAndScope<T>(spans: readonly T[], resourceOf: (span: T) => Resource, scopeOf: (span: T) => unknown): Map<Resource, Map<unknown, T[]>> {
  const byResource = new Map<Resource, Map<unknown, T[]>>();
  for (const span of spans) {
    const resource = resourceOf(span);
    let byScope = byResource.get(resource);
    if (!byScope) byResource.set(resource, (byScope = new Map()));
    const scope = scopeOf(span);
    const list = byScope.get(scope);
    if (list) list.push(span);
    else byScope.set(scope, [span]);
  }
  return byResource;
}

function writeResource(writer: Writer, resource: Resource): void {
  writer.tag(1, 2);
  const start = writer.begin(2);
  if (resource.attributes) writeAttributes(writer, resource.attributes, 1);
  writer.tag(2, 0).varint(0);
  writer.end(start, 2);
}

function writeScope(writer: Writer, scope: { name: string; version?: string; attributes?: Attributes; droppedAttributesCount?: number }): void {
  writer.tag(1, 2);
  const start = writer.begin(1);
  writer.tag(1, 2).string(scope.name);
  if (scope.version) writer.tag(2, 2).string(scope.version);
  if (scope.attributes) writeAttributes(writer, scope.attributes, 3);
  if (scope.droppedAttributesCount) writer.tag(4, 0).varint(scope.droppedAttributesCount);
  writer.end(start, 1);
}

/** A Span message's content (its tag and length are the caller's). */
function writeSpan(writer: Writer, span: ReadableSpan): void {
  const context = span.spanContext();
  writer.tag(1, 2).hex(context.traceId);
  writer.tag(2, 2).hex(context.spanId);
  const traceState = context.traceState?.serialize();
  if (traceState) writer.tag(3, 2).string(traceState);
  const parent = span.parentSpanContext;
  if (parent?.spanId) writer.tag(4, 2).hex(parent.spanId);
  writer.tag(5, 2).string(span.name);
  const kind = span.kind == null ? 0 : span.kind + 1;
  if (kind !== 0) writer.tag(6, 0).varint(kind);
  writer.tag(7, 1).hrTime(span.startTime);
  writer.tag(8, 1).hrTime(span.endTime);
  if (span.attributes) writeAttributes(writer, span.attributes, 9);
  writer.tag(10, 0).varint(span.droppedAttributesCount);
  for (const event of span.events) writeEvent(writer, event);
  writer.tag(12, 0).varint(span.droppedEventsCount);
  for (const link of span.links) writeLink(writer, link);
  writer.tag(14, 0).varint(span.droppedLinksCount);
  writer.tag(15, 2);
  writeStatus(writer, span.status);
  writer.tag(16, 5).fixed32(spanFlags(context.traceFlags, parent?.isRemote));
}

export function writeEvent(writer: Writer, event: TimedEvent): void {
  writer.tag(11, 2);
  const start = writer.begin(1);
  writer.tag(1, 1).hrTime(event.time);
  writer.tag(2, 2).string(event.name);
  if (event.attributes) writeAttributes(writer, event.attributes, 3);
  writer.tag(4, 0).varint(event.droppedAttributesCount || 0);
  writer.end(start, 1);
}

export function writeLink(writer: Writer, link: Link): void {
  writer.tag(13, 2);
  const start = writer.begin(1);
  const context = link.context;
  writer.tag(1, 2).hex(context.traceId);
  writer.tag(2, 2).hex(context.spanId);
  const traceState = context.traceState?.serialize();
  if (traceState) writer.tag(3, 2).string(traceState);
  if (link.attributes) writeAttributes(writer, link.attributes, 4);
  writer.tag(5, 0).varint(link.droppedAttributesCount || 0);
  writer.tag(6, 5).fixed32(spanFlags(context.traceFlags, context.isRemote));
  writer.end(start, 1);
}

function writeStatus(writer: Writer, status: SpanStatus): void {
  const start = writer.begin(1);
  if (status.message) writer.tag(2, 2).string(status.message);
  writer.tag(3, 0).varint(status.code);
  writer.end(start, 1);
}

/** Span.flags: the W3C trace flags, and whether the parent (or linked) context is remote. */
export function spanFlags(traceFlags: number, isRemote: boolean | undefined): number {
  return (traceFlags & 0xff) | SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE | (isRemote ? SPAN_FLAGS_CONTEXT_IS_REMOTE : 0);
}

function writeAttributes(writer: Writer, attributes: Attributes, field: number): void {
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    writer.tag(field, 2);
    const start = writer.begin(1);
    writeKeyValue(writer, key, attributes[key]);
    writer.end(start, 1);
  }
}

function writeKeyValue(writer: Writer, key: string, value: unknown): void {
  writer.tag(1, 2).string(key);
  writer.tag(2, 2);
  const start = writer.begin(1);
  writeAnyValue(writer, value);
  writer.end(start, 1);
}

export function writeAnyValue(writer: Writer, value: AttributeValue | unknown): void {
  switch (typeof value) {
    case 'string':
      writer.tag(1, 2).string(value);
      return;
    case 'boolean':
      writer.tag(2, 0).varint(value ? 1 : 0);
      return;
    case 'number':
      if (Number.isInteger(value) && value >= -MAX_INT64 && value < MAX_INT64) writer.tag(3, 0).varint(value);
      else writer.tag(4, 1).double(value);
      return;
  }
  if (value instanceof Uint8Array) {
    writer.tag(7, 2).bytes(value);
  } else if (Array.isArray(value)) {
    writer.tag(5, 2);
    const start = writer.begin(1);
    for (const item of value) {
      writer.tag(1, 2);
      const itemStart = writer.begin(1);
      writeAnyValue(writer, item);
      writer.end(itemStart, 1);
    }
    writer.end(start, 1);
  } else if (typeof value === 'object' && value !== null) {
    writer.tag(6, 2);
    const start = writer.begin(1);
    for (const key in value) {
      if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
      writer.tag(1, 2);
      const entry = writer.begin(1);
      writeKeyValue(writer, key, (value as Record<string, unknown>)[key]);
      writer.end(entry, 1);
    }
    writer.end(start, 1);
  }
}

/** A growing buffer with the protobuf primitives; lengths are reserved and patched (content moved when the reserve was wrong). */
export class Writer {
  #buffer: Buffer;
  #pos = 0;

  /** Writes into a new buffer of `size` bytes, or into `buffer` (whatever it holds is overwritten). */
  constructor(size: number | Buffer) {
    this.#buffer = typeof size === 'number' ? Buffer.allocUnsafe(size) : size;
  }

  finish(): Uint8Array {
    return this.#buffer.subarray(0, this.#pos);
  }

  /** Where the next byte goes (to rewind() to, or to find what was written since). */
  get position(): number {
    return this.#pos;
  }

  /** The buffer written so far (a later write may move on to a larger one). */
  get buffer(): Buffer {
    return this.#buffer;
  }

  /** Forgets what was written from `position` on. */
  rewind(position: number): void {
    this.#pos = position;
  }

  /** Bytes as they are (a field already encoded), no length. */
  raw(bytes: Uint8Array): this {
    return this.copy(bytes, 0, bytes.length);
  }

  /**
   * A KeyValue field (tag byte `fieldTag`) whose key field is `keyField` and
   * whose value is the string `source` holds as ASCII from `start` to `end`:
   * the bytes begin() and end() would write around it, its lengths known
   * before it is written.
   */
  keyValueAscii(fieldTag: number, keyField: Uint8Array, source: Uint8Array, start: number, end: number): this {
    const valueLength = end - start;
    const anyLength = 1 + varintSize(valueLength) + valueLength;
    const keyValueLength = keyField.length + 1 + varintSize(anyLength) + anyLength;
    this.#ensure(keyValueLength + 6);
    if (keyValueLength >= 0x80) {
      this.#buffer[this.#pos++] = fieldTag;
      this.varint(keyValueLength);
      this.copy(keyField, 0, keyField.length);
      this.#buffer[this.#pos++] = 0x12;
      this.varint(anyLength);
      this.#buffer[this.#pos++] = 0x0a;
      this.varint(valueLength);
      return this.copy(source, start, end);
    }
    // Short (nearly every attribute): every length one byte, the bytes copied by hand.
    const buffer = this.#buffer;
    let at = this.#pos;
    buffer[at++] = fieldTag;
    buffer[at++] = keyValueLength;
    for (let i = 0; i < keyField.length; i++) buffer[at++] = keyField[i]!;
    buffer[at++] = 0x12;
    buffer[at++] = anyLength;
    buffer[at++] = 0x0a;
    buffer[at++] = valueLength;
    for (let i = start; i < end; i++) buffer[at++] = source[i]!;
    this.#pos = at;
    return this;
  }

  /** `source` from `start` to `end` as a length-delimited field's content: ASCII text is its own UTF-8. */
  slice(source: Uint8Array, start: number, end: number): this {
    this.varint(end - start);
    return this.copy(source, start, end);
  }

  /** `source` from `start` to `end` as it is (an encoded message), no length. */
  copy(source: Uint8Array, start: number, end: number): this {
    const length = end - start;
    this.#ensure(length);
    const buffer = this.#buffer;
    // Short slices (most values) copy faster by hand than through a native call.
    if (length < 64) {
      let at = this.#pos;
      for (let i = start; i < end; i++) buffer[at++] = source[i]!;
    } else {
      buffer.set(source.subarray(start, end), this.#pos);
    }
    this.#pos += length;
    return this;
  }

  /** A trace or span id from its hex text as ASCII bytes, exactly as hex() reads the same text. */
  hexSlice(source: Uint8Array, start: number, end: number): this {
    const length = (end - start) >>> 1;
    this.varint(length);
    this.#ensure(length);
    const buffer = this.#buffer;
    let at = this.#pos;
    for (let i = start; at < this.#pos + length; i += 2) buffer[at++] = (HEX_VALUES[source[i]!]! << 4) | HEX_VALUES[source[i + 1]!]!;
    this.#pos = at;
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }

  varint(value: number): this {
    this.#ensure(10);
    const buffer = this.#buffer;
    // One byte: every tag, most lengths and counts.
    if (value >= 0 && value < 128) {
      buffer[this.#pos++] = value;
      return this;
    }
    if (value >= 0 && value <= 0xffffffff) {
      let v = value >>> 0;
      while (v > 127) {
        buffer[this.#pos++] = (v & 127) | 128;
        v >>>= 7;
      }
      buffer[this.#pos++] = v;
      return this;
    }
    // Above 32 bits, or negative (two's complement over 64 bits, ten bytes).
    const abs = Math.abs(value);
    let low = abs >>> 0;
    let high = (abs / TWO_POW_32) >>> 0;
    if (value < 0) {
      low = ~low >>> 0;
      high = ~high >>> 0;
      low = (low + 1) >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
    }
    while (high > 0 || low > 127) {
      buffer[this.#pos++] = (low & 127) | 128;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    buffer[this.#pos++] = low & 127;
    return this;
  }

  fixed32(value: number): this {
    this.#ensure(4);
    this.#buffer.writeUInt32LE(value >>> 0, this.#pos);
    this.#pos += 4;
    return this;
  }

  double(value: number): this {
    this.#ensure(8);
    this.#buffer.writeDoubleLE(value, this.#pos);
    this.#pos += 8;
    return this;
  }

  /** An HrTime as fixed64 nanoseconds since the epoch (exact beyond 2^53, as OpenTelemetry's serializer computes it). */
  hrTime([seconds, nanos]: HrTime): this {
    return this.time(seconds, nanos);
  }

  /** hrTime() of [seconds, nanos]. */
  time(seconds: number, nanos: number): this {
    const secondsLow16 = seconds & 0xffff;
    const secondsHigh = (seconds / 0x10000) >>> 0;
    const fromLow = secondsLow16 * NANOS_PER_SECOND;
    const fromHigh = secondsHigh * NANOS_PER_SECOND;
    const low32WithCarry = (fromLow >>> 0) + (((fromHigh & 0xffff) * 0x10000) >>> 0) + nanos;
    const high = (Math.floor(fromLow / TWO_POW_32) + ((fromHigh / 0x10000) >>> 0) + Math.floor(low32WithCarry / TWO_POW_32)) >>> 0;
    this.#ensure(8);
    this.#buffer.writeUInt32LE(low32WithCarry >>> 0, this.#pos);
    this.#buffer.writeUInt32LE(high, this.#pos + 4);
    this.#pos += 8;
    return this;
  }

  string(text: string): this {
    const length = text.length;
    this.#ensure(length + 10);
    const lengthAt = this.#pos;
    // ASCII (nearly every key and value): the length is known, the bytes are the char codes.
    this.varint(length);
    const buffer = this.#buffer;
    let at = this.#pos;
    for (let i = 0; i < length; i++) {
      const code = text.charCodeAt(i);
      if (code > 127) {
        this.#pos = lengthAt;
        return this.bytes(Buffer.from(text, 'utf8'));
      }
      buffer[at++] = code;
    }
    this.#pos = at;
    return this;
  }

  bytes(bytes: Uint8Array): this {
    this.varint(bytes.length);
    this.#ensure(bytes.length);
    this.#buffer.set(bytes, this.#pos);
    this.#pos += bytes.length;
    return this;
  }

  /** A trace or span id: hex text written as its bytes. */
  hex(text: string): this {
    const length = text.length >>> 1;
    this.varint(length);
    this.#ensure(length);
    const buffer = this.#buffer;
    for (let i = 0; i < length; i++) buffer[this.#pos++] = (hexValue(text.charCodeAt(2 * i)) << 4) | hexValue(text.charCodeAt(2 * i + 1));
    return this;
  }

  /** Reserves `reserve` bytes for a length; returns where it goes. */
  begin(reserve: number): number {
    this.#ensure(reserve);
    const start = this.#pos;
    this.#pos += reserve;
    return start;
  }

  /** Writes the length of what followed begin() (minimal varint, as every serializer writes it), moving the content if the reserve did not fit. */
  end(start: number, reserve: number): void {
    const length = this.#pos - start - reserve;
    const size = length < 0x80 ? 1 : length < 0x4000 ? 2 : length < 0x200000 ? 3 : length < 0x10000000 ? 4 : 5;
    if (size !== reserve) {
      this.#ensure(size - reserve);
      this.#buffer.copyWithin(start + size, start + reserve, this.#pos);
      this.#pos += size - reserve;
    }
    let at = start;
    let v = length;
    while (v > 127) {
      this.#buffer[at++] = (v & 127) | 128;
      v >>>= 7;
    }
    this.#buffer[at] = v;
  }

  #ensure(bytes: number): void {
    if (this.#pos + bytes <= this.#buffer.length) return;
    let size = this.#buffer.length * 2;
    while (size < this.#pos + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.#buffer.copy(grown, 0, 0, this.#pos);
    this.#buffer = grown;
  }
}

/** The bytes a varint of `value` (0 to 2^32 - 1) takes. */
function varintSize(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
}

/** As OpenTelemetry's hexToBinary reads a hex digit (either case). */
function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  return code - 55;
}

/** hexValue() of each byte: ids converted from their ASCII bytes. */
const HEX_VALUES = Int32Array.from({ length: 256 }, (_, code) => hexValue(code));
