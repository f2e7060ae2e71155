import { createTraceState } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';
import { fromCompactLink, type CompactLink, type CompactReader, type CompactSpan, type ScopeLike } from './compact-span.js';
import { serializeTraceRequest, spanFlags, writeAnyValue, writeEvent, writeLink, Writer, writeSpanFields } from './protobuf-spans.js';
import {
  ATTRIBUTE_PLACES, ATTRIBUTES_VALUE, KEY_END, KEY_FIRST_ID, KEY_INLINE, NAME_PLACE, NO_PLACE, PLACES, SPAN_ID_PLACE, STATUS_PLACE,
  TAG_FALSE, TAG_INT32, TAG_REPEATED_STRING, TAG_STRING, TAG_TRUE, TAG_UNDEFINED, TEXT_IN_BYTES, TRACE_ID_PLACE, TRACE_STATE_PLACE,
  BatchCursor, type SpanBatch,
} from './span-batch.js';

/*
 * The protobuf path of the export thread: each span of a batch becomes its
 * OTLP Span message as soon as the batch arrives, written straight from the
 * batch's bytes. Its ASCII strings are copied as bytes and its ids converted
 * from their hex bytes (no JS string made), its numbers read from the bytes,
 * each attribute key's field encoded once per key. Building a CompactSpan, a
 * ReadableSpan and their strings for every span (then serializing them) was
 * most of the thread's CPU, and of its garbage. What is rare (events, links,
 * side values, trace state, unicode text in `texts`) is written from its JS
 * values with the very functions serializeSpansAsProtobuf() uses; a span the
 * fast path does not cover (attributes that are not an object, keys beyond
 * the dictionary or that a JS object would reorder, fields of an unexpected
 * type, anything that throws) is read as before and kept as a ReadableSpan,
 * serialized at export as before. The bytes sent are the same either way.
 */

/**
 * The Span messages of one batch, in one buffer: the buffer goes back to
 * its reader's spares once every span in it has been copied into a request
 * (releaseEncodedSpans), so a steady load writes batches into the same few
 * buffers instead of allocating (and collecting) one per batch. A span never
 * released (dropped while backing off, or at shutdown) only keeps the buffer
 * from being reused.
 */
export class SpanMessages {
  /** Undefined once released: a span read after that throws rather than send bytes another batch wrote. */
  bytes: Buffer | undefined;
  /** Spans whose message is in `bytes` and not released yet. */
  unsent = 0;
  readonly #spares: Buffer[];

  constructor(bytes: Buffer, spares: Buffer[]) {
    this.bytes = bytes;
    this.#spares = spares;
  }

  /** One span fewer to send; the last gives the buffer back. */
  release(): void {
    if (--this.unsent > 0 || this.bytes === undefined) return;
    if (this.#spares.length < MAX_SPARE_MESSAGE_BUFFERS) this.#spares.push(this.bytes);
    this.bytes = undefined;
  }
}

/** Spare buffers a reader keeps: the batches queued or being serialized at once, in a steady load. */
const MAX_SPARE_MESSAGE_BUFFERS = 4;

/**
 * What the export thread queues for a protobuf export: a span as its
 * ScopeSpans.spans field (bytes `start` to `end` of `messages`: tag, length,
 * Span message) or, for the rare span the fast path
 * leaves, its ReadableSpan; its resource and scope (grouped by identity, as
 * ReadableSpans are), and its trace flags (the accounting counts sampled
 * spans through spanContext()).
 */
export class EncodedSpan {
  readonly traceFlags: number;
  readonly resource: Resource;
  readonly scope: ScopeLike;
  /** Undefined for a span kept as a ReadableSpan, and once released. */
  messages: SpanMessages | undefined;
  readonly start: number;
  readonly end: number;
  readonly span: ReadableSpan | undefined;

  // (Fields assigned by hand: the worker runs this file with type stripping, which has no parameter properties.)
  constructor(traceFlags: number, resource: Resource, scope: ScopeLike, messages: SpanMessages | undefined, start: number, end: number, span: ReadableSpan | undefined) {
    this.traceFlags = traceFlags;
    this.resource = resource;
    this.scope = scope;
    this.messages = messages;
    this.start = start;
    this.end = end;
    this.span = span;
  }

  spanContext(): { traceFlags: number } {
    return this;
  }
}

/**
 * The ExportTraceServiceRequest of queued spans: the same bytes
 * serializeSpansAsProtobuf() writes for their ReadableSpans. Written into
 * the buffer `bufferFor` gives for the size expected (overwritten; a larger
 * one replaces it if it is not enough), else into a new one.
 */
export function serializeEncodedSpans(spans: readonly EncodedSpan[], bufferFor?: (size: number) => Buffer): Uint8Array {
  let size = 1024;
  for (const span of spans) size += span.end - span.start;
  return serializeTraceRequest(spans, bufferFor === undefined ? size : bufferFor(size), (span) => span.resource, (span) => span.scope, writeEncodedSpans);
}

/** Spans copied into a request for good (their export serialized): their buffers may be written again once all of a batch's are. */
export function releaseEncodedSpans(spans: readonly EncodedSpan[]): void {
  for (const span of spans) {
    span.messages?.release();
    span.messages = undefined;
  }
}

/** One scope's spans: each run of Span fields that lie one after the other in a batch's buffer (a whole batch, when its spans share their scope) copied at once. */
function writeEncodedSpans(writer: Writer, spans: readonly EncodedSpan[]): void {
  let i = 0;
  while (i < spans.length) {
    const first = spans[i++]!;
    if (first.span !== undefined) {
      writeSpanFields(writer, [first.span]);
      continue;
    }
    const messages = first.messages;
    if (messages?.bytes === undefined) throw new Error('isotrace: a span was serialized after its export released it.');
    let end = first.end;
    for (let next = spans[i]; next !== undefined && next.messages === messages && next.start === end; next = spans[++i]) end = next.end;
    writer.copy(messages.bytes, first.start, end);
  }
}

/** Spans as the protobuf path reads them: the resource, scopes and keys defined so far are `reader`'s. */
export class ProtobufBatchReader {
  readonly #reader: CompactReader;
  /** Each key's KeyValue.key field (tag, length, UTF-8) by the dictionary's number, null for a key whose place in a JS object is not its place in the batch. */
  readonly #keyFields: Array<Uint8Array | null> = [];
  /** Bytes of Span messages per byte of batch, in the last batch (keys written out make them about twice as long). */
  #encodedPerByte = 2.25;
  /** Buffers of batches whose spans have all been serialized, to write the next batches into. */
  readonly #spares: Buffer[] = [];

  constructor(reader: CompactReader) {
    this.#reader = reader;
  }

  /** The batch's spans in order, undefined for a span whose resource or scope is not defined (left out, as the object path leaves it). */
  read(batch: SpanBatch): Array<EncodedSpan | undefined> {
    // One buffer for the batch's messages, sized from the last batch's (a buffer that grows is copied), a spare one when it is large enough.
    const size = Math.ceil(batch.length * (this.#encodedPerByte + 0.25)) + 1024;
    const spare = this.#spares.pop();
    const encoding = new BatchEncoding(batch, this.#reader, this, spare !== undefined && spare.length >= size ? spare : Buffer.allocUnsafe(size), this.#spares);
    const spans = encoding.spans();
    if (batch.length > 0) this.#encodedPerByte = Math.min(MAX_ENCODED_PER_BYTE, encoding.written / batch.length);
    return spans;
  }

  /** The key's field, or null when its span must take the object path (an unknown key, an array index, which a JS object puts first, or __proto__, which it does not keep). */
  keyField(id: number): Uint8Array | null {
    const known = this.#keyFields[id];
    if (known !== undefined) return known;
    const keys = this.#reader.keys;
    if (id >= keys.length) return null;
    for (let i = this.#keyFields.length; i < keys.length; i++) this.#keyFields.push(encodeKeyField(keys[i]!));
    return this.#keyFields[id]!;
  }
}

function encodeKeyField(key: string): Uint8Array | null {
  if (key === '__proto__' || /^\d+$/.test(key)) return null;
  const writer = new Writer(3 * key.length + 16);
  writer.tag(1, 2).string(key);
  return new Uint8Array(writer.finish());
}

/** The most a batch's buffer is sized per byte of batch (a batch of mostly side values says little of the next). */
const MAX_ENCODED_PER_BYTE = 4;

/** Span.attributes' tag byte (field 9, length-delimited). */
const SPAN_ATTRIBUTES_TAG = (9 << 3) | 2;

/** The result of encoding a span on the fast path: done, left out (resource or scope unknown), or to be read on the object path. */
const ENCODED = 0;
const UNDEFINED_PARTS = 1;
const OBJECT_PATH = 2;

/** What a string field read: a string (its place in #refStart/#refEnd or #refText), undefined, or anything else. */
const READ_STRING = 0;
const READ_UNDEFINED = 1;
const READ_OTHER = 2;

/** Slots of the strings a span's fields hold until they are written in protobuf order. */
const NAME = 0;
const TRACE_ID = 1;
const SPAN_ID = 2;
const TRACE_STATE = 3;
const PARENT_ID = 4;
const MESSAGE = 5;
const SLOTS = 6;

/** One batch read into Span messages (the format is span-batch.ts's; repeats name strings of the same batch). */
class BatchEncoding extends BatchCursor {
  readonly #count: number;
  readonly #reader: CompactReader;
  readonly #keys: ProtobufBatchReader;
  readonly #writer: Writer;
  /** The string last read at each place: bytes #lastStart to #lastEnd, or #lastText when it came from a text. */
  readonly #lastStart = new Int32Array(PLACES);
  readonly #lastEnd = new Int32Array(PLACES);
  readonly #lastText: Array<string | undefined> = new Array<string | undefined>(PLACES).fill(undefined);
  /** The string just read. */
  #refStart = 0;
  #refEnd = 0;
  #refText: string | undefined;
  /** The span's string fields, by slot. */
  readonly #slotStart = new Int32Array(SLOTS);
  readonly #slotEnd = new Int32Array(SLOTS);
  readonly #slotText: Array<string | undefined> = new Array<string | undefined>(SLOTS).fill(undefined);
  /** The span being encoded: its resource and scope, when the fast path reaches them. */
  #resource: Resource | undefined;
  #scope: ScopeLike | undefined;
  #traceFlags = 0;

  readonly #spares: Buffer[];

  constructor(batch: SpanBatch, reader: CompactReader, keys: ProtobufBatchReader, buffer: Buffer, spares: Buffer[]) {
    super(batch);
    this.#count = batch.count;
    this.#reader = reader;
    this.#keys = keys;
    this.#writer = new Writer(buffer);
    this.#spares = spares;
  }

  /** Bytes of Span messages written. */
  get written(): number {
    return this.#writer.position;
  }

  spans(): Array<EncodedSpan | undefined> {
    const spans: Array<EncodedSpan | undefined> = [];
    for (let i = 0; i < this.#count; i++) spans.push(this.#span());
    // The writer's buffer is final only now (it may have grown): every message points into it.
    const messages = new SpanMessages(this.#writer.buffer, this.#spares);
    for (const span of spans) {
      if (span === undefined || span.span !== undefined) continue;
      span.messages = messages;
      messages.unsent++;
    }
    if (messages.unsent === 0) messages.release();
    return spans;
  }

  #span(): EncodedSpan | undefined {
    const spanStart = this.pos;
    const nextText = this.nextText;
    // The one place a span reads twice (its id, its parent's): what it held before, for a second reading.
    const idStart = this.#lastStart[SPAN_ID_PLACE]!;
    const idEnd = this.#lastEnd[SPAN_ID_PLACE]!;
    const idText = this.#lastText[SPAN_ID_PLACE];
    const valuesEnd = this.header();
    const writer = this.#writer;
    // The whole ScopeSpans.spans field (tag, length, message): spans one after the other are then one copy into the request.
    const fieldStart = writer.position;
    writer.tag(2, 2);
    const messageStart = writer.begin(2);
    let result: number;
    try {
      result = this.#encode();
    } catch {
      result = OBJECT_PATH;
    }
    let span: EncodedSpan | undefined;
    if (result === ENCODED) {
      writer.end(messageStart, 2);
      span = new EncodedSpan(this.#traceFlags, this.#resource!, this.#scope!, undefined, fieldStart, writer.position, undefined);
    } else {
      writer.rewind(fieldStart);
      if (result === OBJECT_PATH) {
        this.pos = spanStart;
        this.nextText = nextText;
        this.#lastStart[SPAN_ID_PLACE] = idStart;
        this.#lastEnd[SPAN_ID_PLACE] = idEnd;
        this.#lastText[SPAN_ID_PLACE] = idText;
        this.header();
        span = this.#objectPath(this.values(this.#reader.keys));
      }
    }
    // The next span starts after this one's text when it is in the bytes.
    this.pos = this.textIn === TEXT_IN_BYTES ? this.textPos : valuesEnd;
    return span;
  }

  /** A span kept as a ReadableSpan, serialized at export as before. */
  #objectPath(data: CompactSpan): EncodedSpan | undefined {
    if (!this.#reader.canRead(data)) return undefined;
    const span = this.#reader.read(data);
    return new EncodedSpan(data[4], span.resource, span.instrumentationScope, undefined, 0, 0, span);
  }

  /** Writes the span's Span message, in writeSpan()'s order, from the fields read in the batch's. */
  #encode(): number {
    if (this.#stringField(NAME, NAME_PLACE) !== READ_STRING) return OBJECT_PATH;
    const kind = this.value(NO_PLACE);
    if (this.#stringField(TRACE_ID, TRACE_ID_PLACE) !== READ_STRING) return OBJECT_PATH;
    if (this.#stringField(SPAN_ID, SPAN_ID_PLACE) !== READ_STRING) return OBJECT_PATH;
    const traceFlags = this.value(NO_PLACE);
    const traceState = this.#stringField(TRACE_STATE, TRACE_STATE_PLACE);
    const parent = this.#stringField(PARENT_ID, SPAN_ID_PLACE);
    const parentIsRemote = this.value(NO_PLACE);
    const startSeconds = this.value(NO_PLACE);
    const startNanos = this.value(NO_PLACE);
    const endSeconds = this.value(NO_PLACE);
    const endNanos = this.value(NO_PLACE);
    const statusCode = this.value(NO_PLACE);
    const message = this.#stringField(MESSAGE, STATUS_PLACE);
    if (
      (kind !== undefined && typeof kind !== 'number') || typeof traceFlags !== 'number' || traceState === READ_OTHER || parent === READ_OTHER || message === READ_OTHER ||
      typeof startSeconds !== 'number' || typeof startNanos !== 'number' || typeof endSeconds !== 'number' || typeof endNanos !== 'number' || typeof statusCode !== 'number'
    ) {
      return OBJECT_PATH;
    }
    const writer = this.#writer;
    writer.tag(1, 2);
    this.#writeId(TRACE_ID);
    writer.tag(2, 2);
    this.#writeId(SPAN_ID);
    if (traceState === READ_STRING) {
      // As the object path parses it (createTraceState) and writeSpan serializes it: rare, and not always the same text.
      const serialized = createTraceState(this.#slotString(TRACE_STATE)).serialize();
      if (serialized) writer.tag(3, 2).string(serialized);
    }
    if (parent === READ_STRING && this.#slotLength(PARENT_ID) > 0) {
      writer.tag(4, 2);
      this.#writeId(PARENT_ID);
    }
    writer.tag(5, 2);
    this.#writeString(NAME);
    const kindValue = kind == null ? 0 : (kind as number) + 1;
    if (kindValue !== 0) writer.tag(6, 0).varint(kindValue);
    writer.tag(7, 1).time(startSeconds, startNanos);
    writer.tag(8, 1).time(endSeconds, endNanos);
    if (!this.#attributes()) return OBJECT_PATH;
    const links = this.value(NO_PLACE);
    const events = this.value(NO_PLACE);
    const droppedAttributes = this.value(NO_PLACE);
    const droppedEvents = this.value(NO_PLACE);
    const droppedLinks = this.value(NO_PLACE);
    const resourceId = this.value(NO_PLACE);
    const scopeId = this.value(NO_PLACE);
    if (
      (links !== undefined && !Array.isArray(links)) || (events !== undefined && !Array.isArray(events)) ||
      typeof droppedAttributes !== 'number' || typeof droppedEvents !== 'number' || typeof droppedLinks !== 'number' || typeof resourceId !== 'number' || typeof scopeId !== 'number'
    ) {
      return OBJECT_PATH;
    }
    this.#resource = this.#reader.resource(resourceId);
    this.#scope = this.#reader.scope(scopeId);
    if (this.#resource === undefined || this.#scope === undefined) return UNDEFINED_PARTS;
    writer.tag(10, 0).varint(droppedAttributes);
    if (events !== undefined) for (const event of events as TimedEvent[]) writeEvent(writer, event);
    writer.tag(12, 0).varint(droppedEvents);
    if (links !== undefined) for (const link of links as CompactLink[]) writeLink(writer, fromCompactLink(link));
    writer.tag(14, 0).varint(droppedLinks);
    writer.tag(15, 2);
    const status = writer.begin(1);
    if (message === READ_STRING && this.#slotLength(MESSAGE) > 0) {
      writer.tag(2, 2);
      this.#writeString(MESSAGE);
    }
    writer.tag(3, 0).varint(statusCode);
    writer.end(status, 1);
    writer.tag(16, 5).fixed32(spanFlags(traceFlags, parent === READ_STRING ? (parentIsRemote as boolean | undefined) : undefined));
    this.#traceFlags = traceFlags;
    return ENCODED;
  }

  /** The span's attributes as KeyValue fields; false (some written) when the span must take the object path. */
  #attributes(): boolean {
    if (this.bytes[this.pos++] === ATTRIBUTES_VALUE) return false;
    const writer = this.#writer;
    for (;;) {
      const code = this.varint();
      if (code === KEY_END) return true;
      if (code === KEY_INLINE) return false;
      const id = code - KEY_FIRST_ID;
      const key = this.#keys.keyField(id);
      if (key === null) return false;
      const place = id < PLACES - ATTRIBUTE_PLACES ? ATTRIBUTE_PLACES + id : NO_PLACE;
      const tag = this.bytes[this.pos]!;
      const isString = tag === TAG_STRING || tag === TAG_REPEATED_STRING;
      if (isString) {
        this.pos++;
        this.#readString(tag, place);
        // Nearly every string value: ASCII in the batch's bytes, its KeyValue written at once.
        if (this.#refText === undefined) {
          writer.keyValueAscii(SPAN_ATTRIBUTES_TAG, key, this.bytes, this.#refStart, this.#refEnd);
          continue;
        }
      }
      writer.tag(9, 2);
      const keyValue = writer.begin(1);
      writer.raw(key);
      writer.tag(2, 2);
      const anyValue = writer.begin(1);
      if (isString) writer.tag(1, 2).string(this.#refText!);
      else this.#anyValue(place);
      writer.end(anyValue, 1);
      writer.end(keyValue, 1);
    }
  }

  /** An attribute value other than a string as AnyValue's content, as writeAnyValue() writes the value the object path reads. */
  #anyValue(place: number): void {
    const writer = this.#writer;
    const tag = this.bytes[this.pos++]!;
    switch (tag) {
      case TAG_INT32: {
        const value = this.view.getInt32(this.pos, true);
        this.pos += 4;
        writer.tag(3, 0).varint(value);
        return;
      }
      case TAG_TRUE:
        writer.tag(2, 0).varint(1);
        return;
      case TAG_FALSE:
        writer.tag(2, 0).varint(0);
        return;
      case TAG_UNDEFINED:
        return;
    }
    this.pos--;
    writeAnyValue(writer, this.value(place));
  }

  /** Reads a string field into `slot`. */
  #stringField(slot: number, place: number): number {
    const tag = this.bytes[this.pos]!;
    if (tag === TAG_UNDEFINED) {
      this.pos++;
      return READ_UNDEFINED;
    }
    if (tag !== TAG_STRING && tag !== TAG_REPEATED_STRING) {
      this.value(place);
      return READ_OTHER;
    }
    this.pos++;
    this.#readString(tag, place);
    this.#slotStart[slot] = this.#refStart;
    this.#slotEnd[slot] = this.#refEnd;
    this.#slotText[slot] = this.#refText;
    return READ_STRING;
  }

  #slotLength(slot: number): number {
    const text = this.#slotText[slot];
    return text === undefined ? this.#slotEnd[slot]! - this.#slotStart[slot]! : text.length;
  }

  #slotString(slot: number): string {
    return this.#slotText[slot] ?? this.latin1.toString('latin1', this.#slotStart[slot], this.#slotEnd[slot]);
  }

  #writeString(slot: number): void {
    const text = this.#slotText[slot];
    if (text === undefined) this.#writer.slice(this.bytes, this.#slotStart[slot]!, this.#slotEnd[slot]!);
    else this.#writer.string(text);
  }

  #writeId(slot: number): void {
    const text = this.#slotText[slot];
    if (text === undefined) this.#writer.hexSlice(this.bytes, this.#slotStart[slot]!, this.#slotEnd[slot]!);
    else this.#writer.hex(text);
  }

  /** A string as a JS string, for the values the fast path does not write from bytes. */
  protected string(tag: number, place: number): string {
    this.#readString(tag, place);
    return this.#refText ?? this.latin1.toString('latin1', this.#refStart, this.#refEnd);
  }

  /** Reads a string (its tag just read) into #refStart/#refEnd (bytes) or #refText. */
  #readString(tag: number, place: number): void {
    if (tag === TAG_REPEATED_STRING) {
      this.#refStart = this.#lastStart[place]!;
      this.#refEnd = this.#lastEnd[place]!;
      this.#refText = this.#lastText[place];
      return;
    }
    const start = this.textPos;
    this.textPos += this.varint();
    if (this.textIn === TEXT_IN_BYTES) {
      this.#refStart = start;
      this.#refEnd = this.textPos;
      this.#refText = undefined;
    } else {
      this.#refText = this.text.slice(start, this.textPos);
    }
    if (place !== NO_PLACE) {
      this.#lastStart[place] = this.#refStart;
      this.#lastEnd[place] = this.#refEnd;
      this.#lastText[place] = this.#refText;
    }
  }
}
