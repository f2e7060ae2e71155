// One HTTP server variant of bench/http.bench.ts (and collector-faults), in its own
// process: `node bench/lib/http-server.ts <variant> [otlpEndpoint]`. Every variant
// serves the same handler body (a few awaits and one tool call); they differ only
// in what wraps it. Talks to the parent over IPC:
//   → { ready, port }            once listening
//   ← 'begin' / → { begun }      start of a measured window (event-loop utilization)
//   ← 'end'   / → { rss, heapUsed, elu, cpuMicros, mainCpuMicros, stats? }
//   ← 'shutdown' / → { shutdownMs, stats? }   flushes and stops tracing, then exits
// Variants: bare, als, otel, otel-attributes, isotrace, isotrace-in-thread, auto.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type * as NodeHttp from 'node:http';
import type { IncomingMessage, ServerResponse, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SpanKind, Tracer } from '@opentelemetry/api';
import { createRequire } from 'node:module';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

const VARIANTS = ['bare', 'als', 'otel', 'otel-attributes', 'isotrace', 'isotrace-in-thread', 'auto'] as const;
type HttpVariant = (typeof VARIANTS)[number];

interface ServerHandle {
  server: Server;
  /** Flushes and stops tracing (when there is any). */
  shutdown?(): Promise<void>;
  stats?(): unknown;
}

type ToolCall = (args: { q: string }) => Promise<unknown>;

// The handler body every variant serves: a lookup that crosses the event loop, a couple of plain awaits, one tool call.
async function loadUser(): Promise<{ id: string; name: string }> {
  await new Promise((resolve) => setImmediate(resolve));
  return { id: 'u1', name: 'lamp' };
}

async function lookup(args: { q: string }): Promise<{ q: string; hits: number }> {
  await Promise.resolve();
  return { q: args.q, hits: 3 };
}

async function handle(callTool: ToolCall): Promise<string> {
  const user = await loadUser();
  await Promise.resolve();
  const result = await callTool({ q: user.name });
  await Promise.resolve();
  return JSON.stringify({ user, result });
}

function send(res: ServerResponse, body: string): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function fail(res: ServerResponse): void {
  res.statusCode = 500;
  res.end();
}

// The modules are required after tracing is set up, so instrumentations that hook require() see them.
const require = createRequire(import.meta.url);
const httpModule = (): typeof NodeHttp => require('node:http') as typeof NodeHttp;

async function bare(): Promise<ServerHandle> {
  const http = httpModule();
  return { server: http.createServer((_req, res) => void handle(lookup).then((body) => send(res, body), () => fail(res))) };
}

async function als(): Promise<ServerHandle> {
  const http = httpModule();
  const storage = new AsyncLocalStorage<{ requestId: string; tenantId: string; userId: string }>();
  const tool: ToolCall = (args) => {
    if (!storage.getStore()) throw new Error('no request');
    return lookup(args);
  };
  return {
    server: http.createServer((_req, res) =>
      storage.run({ requestId: randomUUID(), tenantId: 'acme', userId: 'u1' }, () => void handle(tool).then((body) => send(res, body), () => fail(res))),
    ),
  };
}

/**
 * The hand-written OpenTelemetry server: one SERVER span and one tool span per request.
 * With `sameAttributes`, the spans carry what isotrace's carry (request identity on both,
 * the HTTP and GenAI attributes): the cost of the data, apart from isotrace's own.
 */
async function otel(endpoint: string, sameAttributes = false): Promise<ServerHandle> {
  const { context, propagation, ROOT_CONTEXT, SpanKind, trace } = await import('@opentelemetry/api');
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
  const { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } = await import('@opentelemetry/core');
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  const { resourceFromAttributes } = await import('@opentelemetry/resources');
  const { BatchSpanProcessor, TracerProvider } = await import('@opentelemetry/sdk-trace');
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'bench-http-otel' }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${endpoint}v1/traces` }) })],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  trace.setGlobalTracerProvider(provider);
  const tracer = trace.getTracer('bench');
  const plainTool = handWrittenTool(tracer, SpanKind.INTERNAL);
  const http = httpModule();
  const server = http.createServer((req, res) => {
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const requestId = randomUUID();
    const identity = { 'isotrace.request_id': requestId, 'isotrace.correlation_id': requestId, 'isotrace.tenant_id': 'acme', 'user.id': 'u1' };
    const attributes: Record<string, string | boolean> = { 'http.request.method': req.method ?? 'GET', 'url.path': pathOf(req) };
    if (sameAttributes) {
      if (req.headers['user-agent']) attributes['user_agent.original'] = req.headers['user-agent'];
      if (req.socket.remoteAddress) attributes['network.peer.address'] = req.socket.remoteAddress;
      Object.assign(attributes, identity, { 'isotrace.request_span': true });
    }
    const span = tracer.startSpan(req.method ?? 'GET', { kind: SpanKind.SERVER, attributes }, parent);
    res.once('finish', () => {
      span.setAttribute('http.response.status_code', res.statusCode);
      span.end();
    });
    const tool = sameAttributes
      ? handWrittenTool(tracer, SpanKind.INTERNAL, { ...identity, 'isotrace.registry_id': `user_u1_${requestId}_1`, 'isotrace.audit.result': 'pass', 'gen_ai.tool.type': 'function', 'gen_ai.tool.description': 'Looks things up' })
      : plainTool;
    context.with(trace.setSpan(parent, span), () => void handle(tool).then((body) => send(res, body), () => fail(res)));
  });
  return { server, shutdown: () => provider.shutdown() };
}

/** @opentelemetry/auto-instrumentations-node (its HTTP instrumentation makes the SERVER span) plus the same hand-written tool span. */
async function auto(endpoint: string): Promise<ServerHandle> {
  const { SpanKind, trace } = await import('@opentelemetry/api');
  const { getNodeAutoInstrumentations } = await import('@opentelemetry/auto-instrumentations-node');
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const { BatchSpanProcessor } = await import('@opentelemetry/sdk-trace');
  const sdk = new NodeSDK({
    serviceName: 'bench-http-auto',
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${endpoint}v1/traces` }) })],
    instrumentations: [getNodeAutoInstrumentations()],
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  const tool = handWrittenTool(trace.getTracer('bench'), SpanKind.INTERNAL);
  const http = httpModule();
  return { server: http.createServer((_req, res) => void handle(tool).then((body) => send(res, body), () => fail(res))), shutdown: () => sdk.shutdown() };
}

/**
 * isotrace: httpRequestContext() around the handler, the tool through a per-request tool system.
 * `inThread`: spans exported on the event loop (a batch processor and the OTLP/JSON exporter, as
 * before the export thread), for comparison.
 */
async function isotrace(endpoint: string, inThread = false): Promise<ServerHandle> {
  const { startTracing } = await import('isotrace');
  const { httpRequestContext } = await import('isotrace/http');
  const { createToolSystem, Tool } = await import('isotrace/tools');
  const exporter = inThread ? new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter({ url: `${endpoint}v1/traces` }) : undefined;
  const tracing = await startTracing({ serviceName: 'bench-http-isotrace', endpoint, ...(exporter ? { exporter } : {}) });
  class Lookup extends Tool<{ q: string }, unknown> {
    static override toolName = 'lookup';
    static override description = 'Looks things up';
    run(args: { q: string }): Promise<unknown> {
      return lookup(args);
    }
  }
  const http = httpModule();
  const server = http.createServer(
    httpRequestContext({ identify: () => ({ tenantId: 'acme', userId: 'u1' }) }, async (_req: IncomingMessage, res: ServerResponse) => {
      const { dispatcher } = createToolSystem([Lookup]);
      send(res, await handle((args) => dispatcher.execute('lookup', args)));
    }),
  );
  return { server, shutdown: () => tracing.shutdown(), stats: () => tracing.stats() };
}

function handWrittenTool(tracer: Tracer, kind: SpanKind, extraAttributes: Record<string, string> = {}): ToolCall {
  return (args) =>
    tracer.startActiveSpan(
      'execute_tool lookup',
      { kind, attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup', 'gen_ai.tool.call.id': `call_${randomUUID()}`, ...extraAttributes } },
      async (span) => {
        try {
          return await lookup(args);
        } finally {
          span.end();
        }
      },
    );
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0] ?? '/';
}

async function main(): Promise<void> {
  const [variant, endpoint = ''] = process.argv.slice(2) as [HttpVariant, string?];
  const factories: Record<HttpVariant, (endpoint: string) => Promise<ServerHandle>> = {
    bare,
    als,
    otel,
    'otel-attributes': (endpoint) => otel(endpoint, true),
    isotrace: (endpoint) => isotrace(endpoint),
    'isotrace-in-thread': (endpoint) => isotrace(endpoint, true),
    auto,
  };
  if (!factories[variant]) throw new TypeError(`unknown variant ${variant}; expected one of ${VARIANTS.join(', ')}`);
  const handle = await factories[variant](endpoint.endsWith('/') || endpoint === '' ? endpoint : `${endpoint}/`);
  handle.server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => handle.server.listen(0, '127.0.0.1', resolve));
  let window: { elu: EventLoopUtilization; cpu: NodeJS.CpuUsage; mainCpu: NodeJS.CpuUsage } | undefined;
  process.on('message', (message) => {
    if (message === 'begin') {
      window = { elu: performance.eventLoopUtilization(), cpu: process.cpuUsage(), mainCpu: process.threadCpuUsage() };
      process.send!({ begun: true });
    } else if (message === 'end') {
      const cpu = window ? process.cpuUsage(window.cpu) : { user: 0, system: 0 };
      // The event loop's own thread (the export thread and V8's helper threads excluded).
      const mainCpu = window ? process.threadCpuUsage(window.mainCpu) : { user: 0, system: 0 };
      const elu = window ? performance.eventLoopUtilization(window.elu).utilization : 0;
      globalThis.gc?.();
      const { rss, heapUsed } = process.memoryUsage();
      process.send!({ rss, heapUsed, elu, cpuMicros: cpu.user + cpu.system, mainCpuMicros: mainCpu.user + mainCpu.system, stats: handle.stats?.() });
    } else if (message === 'shutdown') {
      const start = performance.now();
      void (handle.shutdown?.() ?? Promise.resolve()).then(() => {
        process.send!({ shutdownMs: performance.now() - start, stats: handle.stats?.() });
        handle.server.closeAllConnections();
        handle.server.close();
        setTimeout(() => process.exit(0), 50).unref();
      });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ ready: true, port: (handle.server.address() as AddressInfo).port });
}

await main();
