// A real OTLP/HTTP receiver for tests: listens on 127.0.0.1 (port 0), accepts
// trace exports on POST /v1/traces, protobuf (what isotrace's export thread sends by
// default) or JSON (OTEL_EXPORTER_OTLP_PROTOCOL=http/json, other exporters), and
// counts /v1/metrics exports. It can answer with an error status or
// after a delay, for exporter fault tests.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';
import { spansFromOtlpJson, type AuditSpan, type OtlpTracesJson } from 'isotrace/testing';
import { decodeOtlpTraces } from './otlp-protobuf.ts';

export interface OtlpSinkOptions {
  /** HTTP status to answer every export with (default 200). */
  status?: number;
  /** Milliseconds to wait before answering (default 0). */
  delayMs?: number;
  /**
   * Statuses for successive /v1/traces requests, in turn (a flapping
   * collector); overrides `status` for them. 0 drops the connection unanswered.
   */
  statusCycle?: number[];
}

export interface StartOtlpSinkOptions extends OtlpSinkOptions {
  /** Listen on this port (default: a free one), e.g. to bring a collector up where one was down. */
  port?: number;
}

export interface OtlpSink {
  /** The base URL, e.g. `http://127.0.0.1:40123` (give it to startTracing as `endpoint`). */
  readonly url: string;
  /** Every request received, whatever its path or outcome. */
  readonly requests: number;
  /** Requests to /v1/traces and /v1/metrics. */
  readonly traceRequests: number;
  readonly metricsRequests: number;
  /** The parsed trace payloads accepted so far (protobuf ones decoded to the OTLP/JSON shape): answered with 2xx, and the answer reached a client still waiting for it. */
  readonly payloads: readonly OtlpTracesJson[];
  /** The content types of the trace exports accepted so far, in order. */
  readonly contentTypes: readonly string[];
  /** Every span received so far, in audit form (spansFromOtlpJson). */
  spans(): AuditSpan[];
  /** Polls until `predicate(spans())` holds; rejects with what it has after `timeoutMs`. */
  waitForSpans(predicate: (spans: AuditSpan[]) => boolean, timeoutMs?: number): Promise<AuditSpan[]>;
  /** Changes how later requests are answered. */
  respondWith(options: OtlpSinkOptions): void;
  /** Forgets payloads and counters. */
  reset(): void;
  close(): Promise<void>;
}

const POLL_MS = 25;

/** Starts a sink on 127.0.0.1 with a free port. */
export async function startOtlpSink(options: StartOtlpSinkOptions = {}): Promise<OtlpSink> {
  let behaviour: Required<OtlpSinkOptions> = { status: options.status ?? 200, delayMs: options.delayMs ?? 0, statusCycle: options.statusCycle ?? [] };
  let payloads: OtlpTracesJson[] = [];
  let contentTypes: string[] = [];
  let counts = { requests: 0, traces: 0, metrics: 0 };
  const pendingTimers = new Set<NodeJS.Timeout>();

  // A payload counts once its 2xx answer goes out to a client still waiting (one that timed out never saw it accepted).
  const answer = (res: ServerResponse, status: number, body: string, accepted?: { payload: OtlpTracesJson; contentType: string }): void => {
    const send = (): void => {
      if (res.destroyed) return;
      if (status === 0) {
        res.destroy();
        return;
      }
      if (accepted) {
        payloads.push(accepted.payload);
        contentTypes.push(accepted.contentType);
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    };
    if (behaviour.delayMs <= 0) return send();
    const timer = setTimeout(() => {
      pendingTimers.delete(timer);
      send();
    }, behaviour.delayMs);
    pendingTimers.add(timer);
  };

  const server = createServer((req, res) => {
    counts.requests++;
    void readBody(req).then(
      (body) => {
        const path = new URL(req.url ?? '/', 'http://sink').pathname;
        if (req.method !== 'POST' || (path !== '/v1/traces' && path !== '/v1/metrics')) return answer(res, 404, '{"error":"not found"}');
        if (path === '/v1/metrics') counts.metrics++;
        else counts.traces++;
        const { statusCycle } = behaviour;
        const status = path === '/v1/traces' && statusCycle.length > 0 ? statusCycle[(counts.traces - 1) % statusCycle.length]! : behaviour.status;
        const ok = status >= 200 && status < 300;
        let accepted: { payload: OtlpTracesJson; contentType: string } | undefined;
        if (ok && path === '/v1/traces') {
          const contentType = req.headers['content-type'] ?? '';
          const payload = parseTraces(body, contentType);
          if (payload === undefined) return answer(res, 400, '{"error":"expected an OTLP/JSON or OTLP/protobuf body"}');
          accepted = { payload, contentType };
        }
        answer(res, status, ok ? '{}' : `{"error":"sink answers ${status}"}`, accepted);
      },
      () => answer(res, 400, '{"error":"unreadable body"}'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const spans = (): AuditSpan[] => payloads.flatMap((payload) => spansFromOtlpJson(payload));
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return counts.requests;
    },
    get traceRequests() {
      return counts.traces;
    },
    get metricsRequests() {
      return counts.metrics;
    },
    get payloads() {
      return payloads;
    },
    get contentTypes() {
      return contentTypes;
    },
    spans,
    async waitForSpans(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const current = spans();
        if (predicate(current)) return current;
        if (Date.now() >= deadline) {
          throw new Error(`OTLP sink: condition not met within ${timeoutMs} ms; received ${current.length} spans in ${counts.traces} trace exports: ${current.map((s) => s.name).join(', ') || '(none)'}`);
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    },
    respondWith(next) {
      behaviour = { ...behaviour, ...next };
    },
    reset() {
      payloads = [];
      contentTypes = [];
      counts = { requests: 0, traces: 0, metrics: 0 };
    },
    async close() {
      for (const timer of pendingTimers) clearTimeout(timer);
      pendingTimers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  const encoding = req.headers['content-encoding'];
  if (encoding === 'gzip') return gunzipSync(raw);
  if (encoding === 'deflate') return inflateSync(raw);
  return raw;
}

/** OTLP/protobuf or OTLP/JSON by content type; anything else (or a body that does not parse) is refused so a misconfigured exporter shows up in the test. */
function parseTraces(body: Buffer, contentType: string): OtlpTracesJson | undefined {
  if (contentType.includes('application/x-protobuf')) {
    try {
      return decodeOtlpTraces(body) as OtlpTracesJson;
    } catch {
      return undefined;
    }
  }
  if (contentType !== '' && !contentType.includes('json')) return undefined;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as unknown;
    return parsed !== null && typeof parsed === 'object' ? (parsed as OtlpTracesJson) : undefined;
  } catch {
    return undefined;
  }
}
