// The export thread: receives finished spans in compact form from the main
// thread (span-batch.ts), batches them (ExportBatcher: the batch processor's rules) and exports them
// with its OTLP/HTTP exporter (protobuf, or JSON), so the event loop never
// builds OTLP objects nor serializes them. The same accounting and back-off as
// an in-thread pipeline (ExportAccounting), the same agents closed at shutdown
// (ExportAgents); counts go back to the main thread, which owns stats().
import { format } from 'node:util';
import { parentPort, workerData } from 'node:worker_threads';
import { diag, DiagLogLevel, type DiagLogger } from '@opentelemetry/api';
import type * as JsonExporterModule from '@opentelemetry/exporter-trace-otlp-http';
import type * as ExporterBaseModule from '@opentelemetry/otlp-exporter-base';
import type * as NodeHttpExportModule from '@opentelemetry/otlp-exporter-base/node-http';
import type * as TransformerModule from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { ExportAccounting } from '../export-accounting.js';
import { ExportAgents } from '../export-agents.js';
import { loadModule } from '../load-module.js';
import { withinTimeout } from '../within-timeout.js';
import { CompactReader } from './compact-span.js';
import { ExportBatcher } from './export-batcher.js';
import type { ExportThreadSettings, FromExportThread, ToExportThread } from './messages.js';
import { ProtobufBatchReader, releaseEncodedSpans, serializeEncodedSpans, type EncodedSpan } from './protobuf-span-batch.js';
import { RequestBodies } from './request-bodies.js';
import { MAX_SPARE_BUFFERS as MAX_RETURNED_BUFFERS, readSpanBatch } from './span-batch.js';

const port = parentPort;
if (!port) throw new Error('isotrace: export-worker runs as a worker thread started by startTracing().');
const settings = workerData as ExportThreadSettings;

const post = (message: FromExportThread, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);
diag.setLogger(forwardingLogger(), DiagLogLevel.WARN);

const accounting = new ExportAccounting();
const agents = new ExportAgents();
const reader = new CompactReader((attributes, schemaUrl) => resourceFromAttributes(attributes, schemaUrl === undefined ? {} : { schemaUrl }));
/** http/protobuf: spans become their Span messages as they arrive (JSON still goes through ReadableSpans, which its serializer reads). */
const protobufReader = settings.protocol === 'http/json' ? undefined : new ProtobufBatchReader(reader);
/** Spans that left this thread's queue: handed to an export (or unreadable). The main thread sends no more than the queue holds beyond these. */
let taken = 0;
/** Buffers of batches read, given back with the next counts for the main thread to write again (SpanBatchWriter.recycle). */
let readBuffers: ArrayBuffer[] = [];
// The main thread never has more spans out than handOverCapacity() (queued there, on their way, or queued here): this queue never drops; the main thread does, where it is counted.
const batcher = new ExportBatcher(reportingCounts(accounting.wrapExporter(createExporter())), settings.batch, (spans) => {
  taken += spans;
  postCounts();
});
const processor = accounting.wrapProcessor(batcher);

port.on('message', (message: ToExportThread) => {
  void handle(message).catch((error: unknown) => post({ kind: 'report', level: 'warn', message: format('isotrace: the export thread failed to handle a message:', error) }));
});

async function handle(message: ToExportThread): Promise<void> {
  switch (message.kind) {
    case 'spans':
      if (message.definitions) reader.define(message.definitions);
      if (protobufReader) {
        for (const span of protobufReader.read(message.spans)) {
          // The batcher and the accounting only queue spans, count them and read their trace flags: an EncodedSpan does for them what a ReadableSpan does; the serializer reads it.
          if (span) processor.onEnd(span as unknown as ReadableSpan);
          else taken++;
        }
      } else {
        for (const data of readSpanBatch(message.spans, reader.keys)) {
          if (reader.canRead(data)) processor.onEnd(reader.read(data));
          else taken++;
        }
      }
      // As many as the main thread keeps: more would only be held here.
      if (readBuffers.length < MAX_RETURNED_BUFFERS) readBuffers.push(message.spans.bytes);
      return;
    case 'flush':
      await processor.forceFlush();
      postCounts();
      post({ kind: 'done', id: message.id });
      return;
    case 'shutdown':
      await withinTimeout(processor.shutdown(), message.withinMs, 'shutdown()');
      // Exports still unanswered (a hung or trickling collector) are given up on: their sockets close, their spans count as failed.
      agents.close();
      accounting.abandonPending();
      postCounts();
      post({ kind: 'done', id: message.id });
      return;
  }
}

function postCounts(): void {
  const buffers = readBuffers;
  readBuffers = [];
  post({ kind: 'counts', taken, exported: accounting.exported, failed: accounting.failed, buffers }, buffers);
}

/**
 * OTLP/HTTP with protobuf bodies, or JSON ones; their agents are this thread's,
 * closed at shutdown. The protobuf exporter is built as
 * @opentelemetry/exporter-trace-otlp-proto builds its own (the same transport,
 * retries and OTEL_EXPORTER_OTLP_* handling), with a serializer that writes
 * the same bytes in one pass, from the Span messages encoded on arrival.
 */
function createExporter(): SpanExporter {
  const config = { ...(settings.url === undefined ? {} : { url: settings.url }), timeoutMillis: settings.timeoutMillis, httpAgentOptions: agents.factoryFor('TRACES', settings.timeoutMillis) };
  if (settings.protocol === 'http/json') return new (loadModule<typeof JsonExporterModule>('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter)(config);
  const { OTLPExporterBase } = loadModule<typeof ExporterBaseModule>('@opentelemetry/otlp-exporter-base');
  const { convertLegacyHttpOptions, createOtlpHttpExportDelegate } = loadModule<typeof NodeHttpExportModule>('@opentelemetry/otlp-exporter-base/node-http');
  const { ProtobufTraceSerializer, TraceExporterMetricsHelper } = loadModule<typeof TransformerModule>('@opentelemetry/otlp-transformer');
  const bodies = new RequestBodies();
  const serializer = { serializeRequest: (spans: readonly ReadableSpan[]) => serializeOnce(spans as unknown as readonly EncodedSpan[], bodies), deserializeResponse: (data: Uint8Array) => ProtobufTraceSerializer.deserializeResponse(data) };
  const options = convertLegacyHttpOptions(config, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' });
  const exporter = new OTLPExporterBase(createOtlpHttpExportDelegate(options, serializer, 'otlp_http_span_exporter', TraceExporterMetricsHelper, undefined));
  // A gzipped body is read by zlib on the thread pool, where no socket shows it: never reused.
  return options.compression === 'gzip' ? exporter : bodies.reusing(exporter, () => agents.allWritten());
}

/** The request body of an export, the only time its spans are serialized (retries resend the body): their batches' buffers may then be written again. */
function serializeOnce(spans: readonly EncodedSpan[], bodies: RequestBodies): Uint8Array {
  const body = serializeEncodedSpans(spans, (size) => bodies.buffer(size));
  releaseEncodedSpans(spans);
  bodies.serialized(body);
  return body;
}

/** The exporter, telling the main thread the counts each time an export settles (delivered, failed, or skipped while backing off). */
function reportingCounts(inner: SpanExporter): SpanExporter {
  return {
    export: (spans, done) => {
      inner.export(spans, (result) => {
        postCounts();
        done(result);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
}

/** This thread's diagnostics (the exporter's, the batch processor's, isotrace's reports), on the main thread's logger. */
function forwardingLogger(): DiagLogger {
  const forward =
    (level: 'warn' | 'error') =>
    (message: string, ...args: unknown[]): void =>
      post({ kind: 'report', level, message: format(message, ...args) });
  const ignore = (): void => {};
  return { error: forward('error'), warn: forward('warn'), info: ignore, debug: ignore, verbose: ignore };
}
