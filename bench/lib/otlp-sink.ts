// A stand-in OTLP/HTTP collector that discards what it gets: it answers 200 to
// every POST (after `delayMs`, to play a slow collector) and counts the spans
// in the JSON or protobuf bodies sent to …/v1/traces (without parsing them), per path prefix (one per variant).
// Run directly (`node bench/lib/otlp-sink.ts [delayMs]`) it is a child process
// that sends { url } over IPC and answers 'counts' with its span counts, 'cpu' with its CPU time so far (µs).
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface Sink {
  /** Base URL, e.g. http://127.0.0.1:40123; exporters post to `${url}/<prefix>/v1/traces`. */
  readonly url: string;
  /** Spans received per prefix (`/v3`), and in total under ''. */
  counts(): Record<string, number>;
  close(): Promise<void>;
}

export interface SinkOptions {
  /** Answer each request only after this many ms (a slow collector). Default 0. */
  delayMs?: number;
}

export async function startSink(options: SinkOptions = {}): Promise<Sink> {
  const { delayMs = 0 } = options;
  const counts: Record<string, number> = { '': 0 };
  const server = createServer((req, res) => {
    void readBody(req).then((body) => {
      const path = req.url ?? '/';
      if (path.endsWith('/v1/traces')) {
        const spans = String(req.headers['content-type']).includes('protobuf') ? countProtobufSpans(body) : countSpans(body);
        const prefix = path.slice(0, -'/v1/traces'.length);
        counts[prefix] = (counts[prefix] ?? 0) + spans;
        counts[''] = counts['']! + spans;
      }
      // An empty ExportTraceServiceResponse in the request's encoding, as a collector answers (JSON to a protobuf exporter fails its parsing, a warning per export).
      const protobuf = String(req.headers['content-type']).includes('protobuf');
      const answer = (): void => {
        res.writeHead(200, { 'content-type': protobuf ? 'application/x-protobuf' : 'application/json' });
        res.end(protobuf ? '' : '{}');
      };
      if (delayMs > 0) setTimeout(answer, delayMs).unref();
      else answer();
    });
  });
  // A slow collector keeps many exports waiting: do not let keep-alive limits get in the way.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(Buffer.alloc(0)));
  });
}

const SPAN_KIND_FIELD = Buffer.from('"kind":');

/**
 * The spans in an OTLP/JSON ExportTraceServiceRequest, without parsing it: every span
 * has a `kind` field and nothing else in the document does (attribute keys are values
 * of "key", and quotes inside strings are escaped). On a small machine the sink shares
 * the CPUs with the server under test: parsing bodies would charge the spans' size to
 * the server twice.
 */
function countSpans(body: Buffer): number {
  let spans = 0;
  for (let at = body.indexOf(SPAN_KIND_FIELD); at !== -1; at = body.indexOf(SPAN_KIND_FIELD, at + SPAN_KIND_FIELD.length)) spans++;
  return spans;
}

/**
 * The spans in an OTLP/protobuf ExportTraceServiceRequest, walking only the
 * nesting that holds them (resource_spans = 1 → scope_spans = 2 → spans = 2)
 * and skipping every other field without decoding it.
 */
function countProtobufSpans(body: Buffer): number {
  let spans = 0;
  for (const resourceSpans of fields(body, 0, body.length, 1)) {
    for (const scopeSpans of fields(body, resourceSpans.start, resourceSpans.end, 2)) spans += [...fields(body, scopeSpans.start, scopeSpans.end, 2)].length;
  }
  return spans;
}

/** The length-delimited fields numbered `wanted` in body[start, end). */
function* fields(body: Buffer, start: number, end: number, wanted: number): Generator<{ start: number; end: number }> {
  let at = start;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = body[at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
  };
  while (at < end) {
    const tag = varint();
    const wire = tag % 8;
    if (wire === 0) varint();
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const length = varint();
      if (Math.floor(tag / 8) === wanted) yield { start: at, end: at + length };
      at += length;
    } else return;
  }
}

// As a child process: the sink gets its own CPU time slices, apart from the load generator.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const sink = await startSink({ delayMs: Number(process.argv[2] ?? 0) });
  process.on('message', (message) => {
    if (message === 'counts') process.send!({ counts: sink.counts() });
    if (message === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send!({ cpuMicros: user + system });
    }
    if (message === 'close') void sink.close().then(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ url: sink.url });
}
