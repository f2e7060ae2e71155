import type { Attributes, Link } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import type { CompactDictionary, CompactLink, CompactSpan } from './compact-span.js';

/*
 * Spans handed over to the export thread as bytes in an ArrayBuffer that is
 * transferred, not copied, with a side list for what is rare. Structured
 * clone of spans as arrays and objects (what was posted before) walks every
 * member of every span, serializes each attribute key again for every span,
 * and does it when the batch is posted, long after the span's data was last
 * touched: most of the hand-over's cost on the event loop.
 *
 * Here each span is written as it ends. Numbers and booleans go straight into
 * bytes (a number as a float64 unless it is an int32: every number arrives
 * exactly, -0 and NaN included); an attribute key as the number the
 * dictionary gave it (the key goes once, with the definitions); a string as
 * its length, the string itself linked onto the span's text, which one native
 * call copies after the span's values when it is all ASCII (nearly always:
 * ids, names, tenants, URLs), or which travels as it is in `texts` (any
 * unicode, lone surrogates included, arrives exactly); a string that is the
 * one last written at the same place of the batch (a trace id, a parent's span
 * id, a short attribute value such as a method or a tenant) as one byte.
 * Whatever is not plain (long strings, arrays, maps, bytes, events, links,
 * any other value) goes, untouched, in the side list, structured-cloned as
 * before.
 *
 * A span is a header (TEXT_IN_BYTES or TEXT_IN_TEXTS, then the length of its
 * values as a uint32), its CompactSpan fields in order, each a value, except
 * the attributes: a mark (ATTRIBUTES_OBJECT, or ATTRIBUTES_VALUE and a value
 * for anything but an object), then for each own enumerable key its key code
 * and value, then KEY_END; then its text, when in the bytes. A key code is
 * KEY_INLINE followed by the key as a value, or KEY_FIRST_ID + the
 * dictionary's number. A value is a tag byte and its payload: an int32 (4
 * bytes) or float64 (8 bytes) little-endian, a string's length (varint; the
 * string is the span's text's next that many characters), nothing for a
 * repeated string, an index into the side list (varint).
 */

export const TAG_UNDEFINED = 0;
export const TAG_FALSE = 1;
export const TAG_TRUE = 2;
export const TAG_INT32 = 3;
export const TAG_FLOAT64 = 4;
export const TAG_STRING = 5;
export const TAG_REPEATED_STRING = 6;
export const TAG_SIDE = 7;

/** A span starts with where its text is (then the length of its values, a uint32): after its values, or in `texts`. */
export const TEXT_IN_BYTES = 0;
export const TEXT_IN_TEXTS = 1;
export const SPAN_HEADER_BYTES = 5;

export const ATTRIBUTES_VALUE = 0;
export const ATTRIBUTES_OBJECT = 1;
export const KEY_END = 0;
export const KEY_INLINE = 1;
export const KEY_FIRST_ID = 2;

/**
 * Where a string is remembered for TAG_REPEATED_STRING: the trace id; the
 * span id and parent span id together (a parent often ends right after its
 * child, whose parent id it is); the name, trace state and status message; an
 * attribute by ATTRIBUTE_PLACES + its key's number. NO_PLACE for anything else
 * (never repeated).
 */
export const NO_PLACE = -1;
export const TRACE_ID_PLACE = 0;
export const SPAN_ID_PLACE = 1;
export const NAME_PLACE = 2;
export const TRACE_STATE_PLACE = 3;
export const STATUS_PLACE = 4;
export const ATTRIBUTE_PLACES = 5;
/** Places of ids, which the id generator makes flat strings. */
const ID_PLACES = 2;
/** V8 makes a string this short flat (a longer one may link others). */
const MAX_FLAT_STRING = 12;
/** Places in all: the span's fields, and the first keys of the dictionary (later ones are never repeated). */
export const PLACES = ATTRIBUTE_PLACES + 256;

/** The most a value takes (strings are in the span's text): a tag and a float64. */
const VALUE_BYTES = 10;
/** Room for a span's fields on either side of its attributes (and the attributes' mark or end). */
const FIELDS_BYTES = 16 * VALUE_BYTES;
/** Room for an attribute (a key as a number, or as a marked value, and its value) and the end mark after it. */
const ATTRIBUTE_BYTES = 2 + 2 * VALUE_BYTES;
/** Strings longer than this go in the side list, as their own string (structured clone copies a long string at once). */
const MAX_INLINE_STRING = 4096;
/** A first buffer; buffers then start as large as the largest batch seen. */
const INITIAL_BYTES = 16 * 1024;
/** Buffers the export thread gives back to be reused, at most (more are allocated when none is back yet). */
export const MAX_SPARE_BUFFERS = 8;

/** Attribute keys in order, with the dictionary's numbers. */
interface KeyShape {
  keys: string[];
  ids: number[];
}
/** Key shapes remembered at most (beyond them, new ones are looked up key by key). */
const MAX_SHAPES = 256;

/** The shape's first `count` keys, as a new shape to add to. */
function prefix(shape: KeyShape, count: number): KeyShape {
  return { keys: shape.keys.slice(0, count), ids: shape.ids.slice(0, count) };
}

/** A batch as posted: `bytes` (transferred) holds `count` spans in its first `length` bytes, which name texts in `texts` and values in `side`. */
export interface SpanBatch {
  bytes: ArrayBuffer;
  length: number;
  count: number;
  /** The text of each span whose strings are not all ASCII, in span order. */
  texts: string[];
  side: unknown[];
}

/**
 * The main thread's side: writes each span as it ends into the current
 * batch, and hands the whole batch over with take(). A span that cannot be
 * written (its data throws when read) is left out, never half-written.
 */
export class SpanBatchWriter {
  readonly #dictionary: CompactDictionary;
  #bytes: Uint8Array;
  #view: DataView;
  #utf8: Buffer;
  #capacity: number;
  #pos = 0;
  #count = 0;
  /** The strings of the span being written, one after the other. */
  #spanText = '';
  #texts: string[] = [];
  #side: unknown[] = [];
  /** The string last written at each place in this batch. */
  readonly #last: Array<string | undefined> = new Array<string | undefined>(PLACES).fill(undefined);
  /** The largest batch so far: a new buffer starts that large, so a steady load never grows one. */
  #highWater = INITIAL_BYTES;
  /** Buffers back from the export thread: reusing them spares allocating (and zeroing) one per batch. */
  readonly #spare: ArrayBuffer[] = [];
  /** The numbered keys of recent attributes, by their first key: one lookup instead of one per key. */
  readonly #shapes = new Map<string, KeyShape>();

  constructor(dictionary: CompactDictionary) {
    this.#dictionary = dictionary;
    this.#bytes = new Uint8Array(INITIAL_BYTES);
    this.#view = new DataView(this.#bytes.buffer);
    this.#utf8 = Buffer.from(this.#bytes.buffer);
    this.#capacity = INITIAL_BYTES;
  }

  /** Spans written since the last take(). */
  get count(): number {
    return this.#count;
  }

  /** Writes the span; false (nothing written) when its data could not be read. */
  write(span: ReadableSpan): boolean {
    const pos = this.#pos;
    const texts = this.#texts.length;
    const side = this.#side.length;
    try {
      this.#writeSpan(span);
    } catch {
      this.#pos = pos;
      this.#texts.length = texts;
      this.#side.length = side;
      // What the span wrote is gone: no later span may repeat it.
      this.#last.fill(undefined);
      return false;
    }
    this.#count++;
    return true;
  }

  /** The spans written so far, as one batch to post with its bytes transferred (undefined when none). */
  take(): SpanBatch | undefined {
    if (this.#count === 0) return undefined;
    const batch: SpanBatch = { bytes: this.#bytes.buffer as ArrayBuffer, length: this.#pos, count: this.#count, texts: this.#texts, side: this.#side };
    this.#highWater = Math.max(this.#highWater, this.#pos);
    const spare = this.#spare.pop();
    this.#use(spare ? new Uint8Array(spare) : new Uint8Array(this.#highWater));
    this.clear();
    return batch;
  }

  /** Buffers of batches the export thread has read, given back to be written again. */
  recycle(buffers: readonly ArrayBuffer[]): void {
    for (const buffer of buffers) if (this.#spare.length < MAX_SPARE_BUFFERS && buffer.byteLength > 0) this.#spare.push(buffer);
  }

  /** Forgets what was written and not taken. */
  clear(): void {
    this.#pos = 0;
    this.#count = 0;
    this.#texts = [];
    this.#side = [];
    // Each batch is read on its own: a repeat names a string of the same batch.
    this.#last.fill(undefined);
  }

  #writeSpan(span: ReadableSpan): void {
    const { traceId, spanId, traceFlags, traceState } = span.spanContext();
    const parent = span.parentSpanContext;
    const { code, message } = span.status;
    // Room for the header and the fields before the attributes (and their mark); the attributes and the fields after them make room for themselves.
    this.#reserve(FIELDS_BYTES);
    const header = this.#pos;
    this.#spanText = '';
    this.#pos += SPAN_HEADER_BYTES;
    this.#value(span.name, NAME_PLACE);
    this.#value(span.kind, NO_PLACE);
    this.#value(traceId, TRACE_ID_PLACE);
    this.#value(spanId, SPAN_ID_PLACE);
    this.#value(traceFlags, NO_PLACE);
    this.#value(traceState?.serialize() || undefined, TRACE_STATE_PLACE);
    this.#value(parent?.spanId, SPAN_ID_PLACE);
    this.#value(parent?.isRemote, NO_PLACE);
    this.#value(span.startTime[0], NO_PLACE);
    this.#value(span.startTime[1], NO_PLACE);
    this.#value(span.endTime[0], NO_PLACE);
    this.#value(span.endTime[1], NO_PLACE);
    this.#value(code, NO_PLACE);
    this.#value(message, STATUS_PLACE);
    this.#attributes(span.attributes);
    this.#reserve(FIELDS_BYTES);
    this.#value(span.links.length === 0 ? undefined : span.links.map(toCompactLink), NO_PLACE);
    this.#value(span.events.length === 0 ? undefined : span.events, NO_PLACE);
    this.#value(span.droppedAttributesCount, NO_PLACE);
    this.#value(span.droppedEventsCount, NO_PLACE);
    this.#value(span.droppedLinksCount, NO_PLACE);
    this.#value(this.#dictionary.resourceId(span.resource), NO_PLACE);
    this.#value(this.#dictionary.scopeId(span.instrumentationScope), NO_PLACE);
    this.#writeText(header);
  }

  /**
   * The span's strings after its values, as ASCII bytes (one native call
   * copies them all: Node's UTF-8 writer, which writes one byte per
   * character only when every character is ASCII); a text with anything
   * else goes as it is in `texts`, exact.
   */
  #writeText(header: number): void {
    const text = this.#spanText;
    this.#spanText = '';
    this.#view.setUint32(header + 1, this.#pos - header - SPAN_HEADER_BYTES, true);
    if (text.length === 0) {
      this.#bytes[header] = TEXT_IN_BYTES;
      return;
    }
    // Room for the text in UTF-8 (three bytes at most per UTF-16 unit): a text that is not ASCII is written, then dropped.
    this.#reserve(3 * text.length);
    // Reading a character makes V8 flatten the linked strings into one, which Node's writer then copies at once (it walks linked ones far slower).
    text.charCodeAt(0);
    if (this.#utf8.write(text, this.#pos, 'utf8') === text.length) {
      this.#bytes[header] = TEXT_IN_BYTES;
      this.#pos += text.length;
    } else {
      this.#bytes[header] = TEXT_IN_TEXTS;
      this.#texts.push(text);
    }
  }

  #attributes(attributes: Attributes): void {
    if (typeof attributes !== 'object' || attributes === null) {
      this.#byte(ATTRIBUTES_VALUE);
      this.#value(attributes, NO_PLACE);
      return;
    }
    this.#byte(ATTRIBUTES_OBJECT);
    // The keys of the last attributes that started with the same key: spans from one place in the code have the same keys in the same order.
    let shape: KeyShape | undefined;
    let seen: KeyShape | undefined;
    let index = 0;
    // Own enumerable string keys, in for-in order: what structured clone copies of an object.
    for (const key in attributes) {
      if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
      this.#reserve(ATTRIBUTE_BYTES);
      if (index === 0) shape = this.#shapes.get(key);
      let id: number;
      // Keys are internalized strings: comparing them compares two pointers.
      if (shape !== undefined && shape.keys[index] === key) {
        id = shape.ids[index]!;
      } else {
        seen = shape === undefined ? (seen ?? { keys: [], ids: [] }) : prefix(shape, index);
        shape = undefined;
        id = this.#dictionary.keyId(key);
      }
      if (seen !== undefined) {
        seen.keys.push(key);
        seen.ids.push(id);
      }
      index++;
      if (id < 0) {
        this.#byte(KEY_INLINE);
        this.#value(key, NO_PLACE);
        this.#value(attributes[key], NO_PLACE);
      } else {
        this.#varint(id + KEY_FIRST_ID);
        this.#value(attributes[key], id < PLACES - ATTRIBUTE_PLACES ? ATTRIBUTE_PLACES + id : NO_PLACE);
      }
    }
    this.#byte(KEY_END);
    if (shape !== undefined && shape.keys.length > index) seen = prefix(shape, index);
    if (seen !== undefined) this.#rememberShape(seen);
  }

  /** Remembers keys just written (when all are numbered) for the next attributes that start with the same key; MAX_SHAPES first keys at most. */
  #rememberShape(shape: KeyShape): void {
    if (shape.keys.length === 0 || shape.ids.includes(-1)) return;
    if (this.#shapes.size >= MAX_SHAPES && !this.#shapes.has(shape.keys[0]!)) return;
    this.#shapes.set(shape.keys[0]!, shape);
  }

  #value(value: unknown, place: number): void {
    switch (typeof value) {
      case 'string':
        this.#string(value, place);
        return;
      case 'number':
        this.#number(value);
        return;
      case 'boolean':
        this.#byte(value ? TAG_TRUE : TAG_FALSE);
        return;
      case 'undefined':
        this.#byte(TAG_UNDEFINED);
        return;
    }
    this.#sideValue(value);
  }

  #number(value: number): void {
    // -0 is not written as an int32: as a double it arrives as -0.
    if ((value | 0) === value && (value !== 0 || 1 / value > 0)) {
      this.#bytes[this.#pos] = TAG_INT32;
      this.#view.setInt32(this.#pos + 1, value, true);
      this.#pos += 5;
    } else {
      this.#bytes[this.#pos] = TAG_FLOAT64;
      this.#view.setFloat64(this.#pos + 1, value, true);
      this.#pos += 9;
    }
  }

  #string(text: string, place: number): void {
    const length = text.length;
    if (length > MAX_INLINE_STRING) {
      this.#sideValue(text);
      return;
    }
    if (place !== NO_PLACE) {
      // Only strings V8 keeps flat are compared (two long strings that differ are compared in its runtime, slower than writing one).
      if ((place < ID_PLACES || length <= MAX_FLAT_STRING) && this.#last[place] === text) {
        this.#byte(TAG_REPEATED_STRING);
        return;
      }
      this.#last[place] = text;
    }
    this.#byte(TAG_STRING);
    this.#varint(length);
    // Linked, not copied: the span's text is copied at once when the span is written (writeText).
    this.#spanText += text;
  }

  #sideValue(value: unknown): void {
    this.#byte(TAG_SIDE);
    this.#varint(this.#side.push(value) - 1);
  }

  #byte(value: number): void {
    this.#bytes[this.#pos++] = value;
  }

  #varint(value: number): void {
    let v = value >>> 0;
    while (v > 127) {
      this.#bytes[this.#pos++] = (v & 127) | 128;
      v >>>= 7;
    }
    this.#bytes[this.#pos++] = v;
  }

  /** Makes room for `bytes` more (values write without checking: each reserve covers what follows it, VALUE_BYTES at most a value). */
  #reserve(bytes: number): void {
    if (this.#pos + bytes <= this.#capacity) return;
    let size = this.#capacity * 2;
    while (size < this.#pos + bytes) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#bytes.subarray(0, this.#pos));
    this.#use(grown);
  }

  #use(bytes: Uint8Array): void {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer);
    this.#utf8 = Buffer.from(bytes.buffer);
    this.#capacity = bytes.length;
  }
}

function toCompactLink(link: Link): CompactLink {
  const { traceId, spanId, traceFlags, isRemote, traceState } = link.context;
  return [traceId, spanId, traceFlags, isRemote, traceState?.serialize() || undefined, link.attributes, link.droppedAttributesCount];
}

/** The export thread's side: the batch's spans in compact form, attribute keys named by `keys` (the dictionary's, from its definitions). */
export function readSpanBatch(batch: SpanBatch, keys: readonly string[]): CompactSpan[] {
  const reader = new BatchReader(batch);
  const spans: CompactSpan[] = [];
  for (let i = 0; i < batch.count; i++) spans.push(reader.span(keys));
  return spans;
}

/**
 * Reads a batch's values in the order SpanBatchWriter wrote them. What a
 * string read becomes is the subclass's: a JS string (BatchReader), or where
 * its bytes are (the protobuf path, which writes them on without making one).
 * Its members are protected, not #private: the protobuf path's fast reading
 * works on them directly.
 */
export abstract class BatchCursor {
  protected readonly bytes: Uint8Array;
  protected readonly view: DataView;
  protected readonly latin1: Buffer;
  protected readonly texts: string[];
  protected readonly side: unknown[];
  protected pos = 0;
  protected nextText = 0;
  /** The span's text: in the bytes from textPos, or (textIn TEXT_IN_TEXTS) `text` from textPos. */
  protected textIn = TEXT_IN_BYTES;
  protected text = '';
  protected textPos = 0;

  constructor({ bytes, length, texts, side }: SpanBatch) {
    this.bytes = new Uint8Array(bytes, 0, length);
    this.view = new DataView(bytes, 0, length);
    this.latin1 = Buffer.from(bytes, 0, length);
    this.texts = texts;
    this.side = side;
  }

  /** A string value, its tag (TAG_STRING or TAG_REPEATED_STRING) just read; remembered at `place` unless NO_PLACE. */
  protected abstract string(tag: number, place: number): string;

  /** Reads a span's header: where its text is; returns where its values end. */
  protected header(): number {
    this.textIn = this.bytes[this.pos]!;
    const valuesEnd = this.pos + SPAN_HEADER_BYTES + this.view.getUint32(this.pos + 1, true);
    this.pos += SPAN_HEADER_BYTES;
    if (this.textIn === TEXT_IN_BYTES) {
      this.textPos = valuesEnd;
    } else {
      this.text = this.texts[this.nextText++]!;
      this.textPos = 0;
    }
    return valuesEnd;
  }

  /** The span's values (its header read), attribute keys named by `keys`. */
  protected values(keys: readonly string[]): CompactSpan {
    return [
      this.value(NAME_PLACE) as CompactSpan[0],
      this.value(NO_PLACE) as CompactSpan[1],
      this.value(TRACE_ID_PLACE) as CompactSpan[2],
      this.value(SPAN_ID_PLACE) as CompactSpan[3],
      this.value(NO_PLACE) as CompactSpan[4],
      this.value(TRACE_STATE_PLACE) as CompactSpan[5],
      this.value(SPAN_ID_PLACE) as CompactSpan[6],
      this.value(NO_PLACE) as CompactSpan[7],
      this.value(NO_PLACE) as CompactSpan[8],
      this.value(NO_PLACE) as CompactSpan[9],
      this.value(NO_PLACE) as CompactSpan[10],
      this.value(NO_PLACE) as CompactSpan[11],
      this.value(NO_PLACE) as CompactSpan[12],
      this.value(STATUS_PLACE) as CompactSpan[13],
      this.attributes(keys),
      this.value(NO_PLACE) as CompactSpan[15],
      this.value(NO_PLACE) as CompactSpan[16],
      this.value(NO_PLACE) as CompactSpan[17],
      this.value(NO_PLACE) as CompactSpan[18],
      this.value(NO_PLACE) as CompactSpan[19],
      this.value(NO_PLACE) as CompactSpan[20],
      this.value(NO_PLACE) as CompactSpan[21],
    ];
  }

  protected attributes(keys: readonly string[]): Attributes {
    if (this.bytes[this.pos++] === ATTRIBUTES_VALUE) return this.value(NO_PLACE) as Attributes;
    const attributes: Record<string, unknown> = {};
    for (;;) {
      const code = this.varint();
      if (code === KEY_END) return attributes as Attributes;
      if (code === KEY_INLINE) {
        const key = this.value(NO_PLACE) as string;
        attributes[key] = this.value(NO_PLACE);
      } else {
        const id = code - KEY_FIRST_ID;
        attributes[keys[id]!] = this.value(id < PLACES - ATTRIBUTE_PLACES ? ATTRIBUTE_PLACES + id : NO_PLACE);
      }
    }
  }

  protected value(place: number): unknown {
    const tag = this.bytes[this.pos++]!;
    switch (tag) {
      case TAG_UNDEFINED:
        return undefined;
      case TAG_FALSE:
        return false;
      case TAG_TRUE:
        return true;
      case TAG_INT32: {
        const value = this.view.getInt32(this.pos, true);
        this.pos += 4;
        return value;
      }
      case TAG_FLOAT64: {
        const value = this.view.getFloat64(this.pos, true);
        this.pos += 8;
        return value;
      }
      case TAG_STRING:
      case TAG_REPEATED_STRING:
        return this.string(tag, place);
      case TAG_SIDE:
        return this.side[this.varint()];
    }
    throw new Error(`isotrace: unreadable span batch (tag ${tag} at byte ${this.pos - 1}).`);
  }

  protected varint(): number {
    let value = 0;
    let shift = 0;
    for (;;) {
      const byte = this.bytes[this.pos++]!;
      value |= (byte & 127) << shift;
      if (byte < 128) return value >>> 0;
      shift += 7;
    }
  }
}

/** A batch read into compact spans, each string a JS string. */
class BatchReader extends BatchCursor {
  /** The string last read at each place. */
  readonly #last: Array<string | undefined> = [];

  span(keys: readonly string[]): CompactSpan {
    const valuesEnd = this.header();
    const span = this.values(keys);
    // The next span starts after this one's text when it is in the bytes.
    this.pos = this.textIn === TEXT_IN_BYTES ? this.textPos : valuesEnd;
    return span;
  }

  protected string(tag: number, place: number): string {
    if (tag === TAG_REPEATED_STRING) return this.#last[place]!;
    const start = this.textPos;
    this.textPos += this.varint();
    const text = this.textIn === TEXT_IN_BYTES ? this.latin1.toString('latin1', start, this.textPos) : this.text.slice(start, this.textPos);
    if (place !== NO_PLACE) this.#last[place] = text;
    return text;
  }
}
