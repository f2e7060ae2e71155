// Decodes an OTLP/HTTP protobuf trace export (ExportTraceServiceRequest) into
// the OTLP/JSON shape (hex ids, enum numbers, nanosecond strings), so a test
// sink reads protobuf and JSON bodies alike. Written from the .proto files of
// opentelemetry-proto (trace/v1, common/v1, resource/v1); a field it does not
// know is skipped, a malformed body throws.

type Json = Record<string, unknown>;

/** Field number → how to read it and where it goes in the JSON object. */
interface FieldSpec {
  readonly name: string;
  readonly type: 'string' | 'bytes-hex' | 'bytes-base64' | 'uint' | 'int64' | 'bool' | 'fixed64' | 'fixed32' | 'double' | 'message';
  readonly message?: MessageSpec;
  readonly repeated?: boolean;
}
type MessageSpec = Readonly<Record<number, FieldSpec>>;

const anyValue: Record<number, FieldSpec> = {};
const keyValue: MessageSpec = { 1: { name: 'key', type: 'string' }, 2: { name: 'value', type: 'message', message: anyValue } };
Object.assign(anyValue, {
  1: { name: 'stringValue', type: 'string' },
  2: { name: 'boolValue', type: 'bool' },
  3: { name: 'intValue', type: 'int64' },
  4: { name: 'doubleValue', type: 'double' },
  5: { name: 'arrayValue', type: 'message', message: { 1: { name: 'values', type: 'message', message: anyValue, repeated: true } } },
  6: { name: 'kvlistValue', type: 'message', message: { 1: { name: 'values', type: 'message', message: keyValue, repeated: true } } },
  7: { name: 'bytesValue', type: 'bytes-base64' },
} satisfies Record<number, FieldSpec>);
const attributes = (field: number): MessageSpec => ({ [field]: { name: 'attributes', type: 'message', message: keyValue, repeated: true } });

const status: MessageSpec = { 2: { name: 'message', type: 'string' }, 3: { name: 'code', type: 'uint' } };
const event: MessageSpec = { 1: { name: 'timeUnixNano', type: 'fixed64' }, 2: { name: 'name', type: 'string' }, ...attributes(3), 4: { name: 'droppedAttributesCount', type: 'uint' } };
const link: MessageSpec = {
  1: { name: 'traceId', type: 'bytes-hex' },
  2: { name: 'spanId', type: 'bytes-hex' },
  3: { name: 'traceState', type: 'string' },
  ...attributes(4),
  5: { name: 'droppedAttributesCount', type: 'uint' },
  6: { name: 'flags', type: 'fixed32' },
};
const span: MessageSpec = {
  1: { name: 'traceId', type: 'bytes-hex' },
  2: { name: 'spanId', type: 'bytes-hex' },
  3: { name: 'traceState', type: 'string' },
  4: { name: 'parentSpanId', type: 'bytes-hex' },
  5: { name: 'name', type: 'string' },
  6: { name: 'kind', type: 'uint' },
  7: { name: 'startTimeUnixNano', type: 'fixed64' },
  8: { name: 'endTimeUnixNano', type: 'fixed64' },
  ...attributes(9),
  10: { name: 'droppedAttributesCount', type: 'uint' },
  11: { name: 'events', type: 'message', message: event, repeated: true },
  12: { name: 'droppedEventsCount', type: 'uint' },
  13: { name: 'links', type: 'message', message: link, repeated: true },
  14: { name: 'droppedLinksCount', type: 'uint' },
  15: { name: 'status', type: 'message', message: status },
  16: { name: 'flags', type: 'fixed32' },
};
const scope: MessageSpec = { 1: { name: 'name', type: 'string' }, 2: { name: 'version', type: 'string' }, ...attributes(3), 4: { name: 'droppedAttributesCount', type: 'uint' } };
const scopeSpans: MessageSpec = { 1: { name: 'scope', type: 'message', message: scope }, 2: { name: 'spans', type: 'message', message: span, repeated: true }, 3: { name: 'schemaUrl', type: 'string' } };
const resource: MessageSpec = { ...attributes(1), 2: { name: 'droppedAttributesCount', type: 'uint' } };
const resourceSpans: MessageSpec = { 1: { name: 'resource', type: 'message', message: resource }, 2: { name: 'scopeSpans', type: 'message', message: scopeSpans, repeated: true }, 3: { name: 'schemaUrl', type: 'string' } };
const exportRequest: MessageSpec = { 1: { name: 'resourceSpans', type: 'message', message: resourceSpans, repeated: true } };

/** An ExportTraceServiceRequest body in OTLP/JSON shape; throws on a body that is not valid protobuf. */
export function decodeOtlpTraces(body: Uint8Array): Json {
  return new Reader(body).message(exportRequest, body.length);
}

class Reader {
  #pos = 0;
  readonly #buf: Buffer;

  constructor(body: Uint8Array) {
    this.#buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  }

  message(spec: MessageSpec, length: number): Json {
    const end = this.#pos + length;
    if (end > this.#buf.length) throw new Error('OTLP protobuf: truncated message');
    const out: Json = {};
    while (this.#pos < end) {
      const tag = Number(this.#varint());
      const field = spec[tag >>> 3];
      const wire = tag & 7;
      if (!field) {
        this.#skip(wire);
        continue;
      }
      const value = this.#value(field, wire);
      if (field.repeated) ((out[field.name] ??= []) as unknown[]).push(value);
      else out[field.name] = value;
    }
    if (this.#pos !== end) throw new Error('OTLP protobuf: a field runs past its message');
    return out;
  }

  #value(field: FieldSpec, wire: number): unknown {
    switch (field.type) {
      case 'string':
        return this.#bytes().toString('utf8');
      case 'bytes-hex':
        return this.#bytes().toString('hex');
      case 'bytes-base64':
        return this.#bytes().toString('base64');
      case 'uint':
        return Number(this.#varint());
      case 'int64':
        return Number(BigInt.asIntN(64, this.#varint()));
      case 'bool':
        return this.#varint() !== 0n;
      case 'fixed64':
        return this.#take(8).readBigUInt64LE().toString();
      case 'fixed32':
        return this.#take(4).readUInt32LE();
      case 'double':
        return this.#take(8).readDoubleLE();
      case 'message':
        if (wire !== 2) throw new Error(`OTLP protobuf: ${field.name} is not length-delimited`);
        return this.message(field.message!, Number(this.#varint()));
    }
  }

  #varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.#pos >= this.#buf.length) throw new Error('OTLP protobuf: truncated varint');
      const byte = this.#buf[this.#pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
    throw new Error('OTLP protobuf: varint too long');
  }

  #bytes(): Buffer {
    return this.#take(Number(this.#varint()));
  }

  #take(length: number): Buffer {
    if (this.#pos + length > this.#buf.length) throw new Error('OTLP protobuf: truncated field');
    const slice = this.#buf.subarray(this.#pos, this.#pos + length);
    this.#pos += length;
    return slice;
  }

  #skip(wire: number): void {
    if (wire === 0) this.#varint();
    else if (wire === 1) this.#take(8);
    else if (wire === 2) this.#bytes();
    else if (wire === 5) this.#take(4);
    else throw new Error(`OTLP protobuf: unsupported wire type ${wire}`);
  }
}
