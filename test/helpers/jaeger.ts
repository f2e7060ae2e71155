/**
 * Test helpers for a real Jaeger v2: build (once) and run the binary with the
 * repository's configs on 127.0.0.1, and read traces back through the api/v3
 * HTTP query API.
 *
 * The binary is built by scripts/ensure-jaeger.sh into .cache/jaeger/ and
 * reused afterwards; CI runs that script before the tests, because the first
 * build takes several minutes.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { AddressInfo, Server } from 'node:net';
import { ENSURE_UNAVAILABLE_EXIT_CODE, runEnsureScript } from './ensure-script.ts';
import { stopChild } from './process.ts';

/** A running Jaeger all-in-one (collector-config/jaeger.yaml). */
export interface JaegerProcess {
  /** OTLP/HTTP base URL, e.g. `http://127.0.0.1:40123`; traces go to `${otlpHttpUrl}/v1/traces`. */
  readonly otlpHttpUrl: string;
  /** OTLP/gRPC `host:port`, e.g. `127.0.0.1:40124`. */
  readonly otlpGrpcEndpoint: string;
  /** Query base URL (UI, legacy `/api`, `/api/v3`), e.g. `http://127.0.0.1:40125`. */
  readonly queryUrl: string;
  /** Health status URL; answers 200 once every component is up. */
  readonly healthUrl: string;
  /** Stops the process (SIGTERM, then SIGKILL after a bound). Safe to call twice. */
  stop(): Promise<void>;
  /** Everything the process wrote so far (stdout and stderr, last 64 KiB). */
  logs(): string;
}

/** A running collector tier (collector-config/otel-collector.yaml): no query API, metrics for Prometheus. */
export type CollectorProcess = Omit<JaegerProcess, 'queryUrl'> & {
  /** Prometheus scrape URL of the metrics pipeline, e.g. `http://127.0.0.1:40126/metrics`. */
  readonly metricsUrl?: string;
};

/** Options shared by both configs. */
export interface StartOptionsBase {
  /** Extra environment for the process, applied after the generated endpoints. */
  readonly env?: Record<string, string>;
  /** Overrides the config file (e.g. a deliberately broken one); endpoints are still passed as env. */
  readonly configFile?: string;
  /** How long to wait for the health endpoint; default 30 s. */
  readonly readyTimeoutMs?: number;
}

/** Starts collector-config/jaeger.yaml. */
export interface StartJaegerOptions extends StartOptionsBase {
  readonly config?: 'jaeger';
}

/** Starts collector-config/otel-collector.yaml. */
export interface StartCollectorOptions extends StartOptionsBase {
  readonly config: 'collector';
  /** Downstream Jaeger's OTLP/gRPC `host:port`, e.g. {@link JaegerProcess.otlpGrpcEndpoint}. */
  readonly exportTo: string;
  /** Sets ISOTRACE_COLLECTOR_KEEP_TOOL_ARGUMENTS; default false (arguments and results are deleted). */
  readonly keepToolArguments?: boolean;
}

/** Jaeger could not be built, started or queried; `cause` holds the underlying error, if any. */
export class JaegerHarnessError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = this.constructor.name;
  }
}

/**
 * This machine cannot build Jaeger (no Go toolchain, or no module proxy).
 * Only thrown outside CI, so a test may skip on it with the message as the
 * printed reason; with `CI=true` the same condition is a plain
 * {@link JaegerHarnessError}.
 */
export class JaegerUnavailableError extends JaegerHarnessError {}

/** An OTLP/JSON attribute value as api/v3 returns it (64-bit ints arrive as strings). */
export interface OtlpAnyValue {
  readonly stringValue?: string;
  readonly boolValue?: boolean;
  readonly intValue?: string | number;
  readonly doubleValue?: number;
  readonly bytesValue?: string;
  readonly arrayValue?: { readonly values?: readonly OtlpAnyValue[] };
  readonly kvlistValue?: { readonly values?: readonly OtlpKeyValue[] };
}

/** An OTLP/JSON attribute. */
export interface OtlpKeyValue {
  readonly key: string;
  readonly value?: OtlpAnyValue;
}

/** An OTLP/JSON span; ids are lowercase hex. */
export interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind?: number;
  readonly startTimeUnixNano?: string;
  readonly endTimeUnixNano?: string;
  readonly attributes?: readonly OtlpKeyValue[];
  readonly status?: { readonly code?: number; readonly message?: string };
}

/** OTLP/JSON spans of one resource, grouped by instrumentation scope. */
export interface OtlpResourceSpans {
  readonly resource?: { readonly attributes?: readonly OtlpKeyValue[] };
  readonly scopeSpans?: readonly {
    readonly scope?: { readonly name?: string; readonly version?: string };
    readonly spans?: readonly OtlpSpan[];
  }[];
}

/** Body of `GET /api/v3/traces` and `GET /api/v3/traces/{id}`: OTLP/JSON wrapped in `result`. */
export interface ApiV3TracesResponse {
  readonly result: { readonly resourceSpans?: readonly OtlpResourceSpans[] };
}

/** One span together with its resource's attributes, as {@link listSpans} yields it. */
export interface SpanWithResource {
  readonly span: OtlpSpan;
  readonly resourceAttributes: readonly OtlpKeyValue[];
}

/** Search parameters for {@link queryTraces}. */
export interface TraceQuery {
  /** `service.name` of the spans' resource (required by Jaeger). */
  readonly service: string;
  /** Only traces starting at or after this; default one hour ago. */
  readonly since?: Date;
  /** Only traces starting before this; default one minute from now. */
  readonly until?: Date;
  /** Restricts to one span name. */
  readonly operation?: string;
  /** Maximum number of traces (`query.num_traces`, which Jaeger requires); default 20. */
  readonly limit?: number;
}

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const ensureScript = `${repoRoot}scripts/ensure-jaeger.sh`;
const configFiles = {
  jaeger: `${repoRoot}collector-config/jaeger.yaml`,
  collector: `${repoRoot}collector-config/otel-collector.yaml`,
} as const;

// Cached: well under a second. First build on 2 cores: several minutes.
const ENSURE_TIMEOUT_MS = 30 * 60_000;
const DEFAULT_READY_TIMEOUT_MS = 30_000;
const DEFAULT_TRACE_LIMIT = 20;
const HEALTH_POLL_INTERVAL_MS = 100;
const QUERY_POLL_INTERVAL_MS = 250;
const REQUEST_TIMEOUT_MS = 5_000;
const STOP_GRACE_MS = 10_000;
const LOG_TAIL_CHARS = 64 * 1024;
const ERROR_TAIL_CHARS = 6_000;
// Free ports are found by binding port 0 and releasing it, so another process
// can take one in between; a start that loses that race is retried.
const START_ATTEMPTS = 3;

/**
 * Builds the Jaeger v2 binary if it is not cached yet and resolves to its path.
 *
 * Rejects with {@link JaegerUnavailableError} when this machine has no Go
 * toolchain or module proxy (never when `process.env.CI === 'true'`), and with
 * {@link JaegerHarnessError} (including the script's stderr tail) when the
 * build fails.
 *
 * @example
 * const binary = await ensureJaegerBinary(); // .../.cache/jaeger/v1.76.0/jaeger
 */
export async function ensureJaegerBinary(): Promise<string> {
  const result = await runEnsureScript(ensureScript, ENSURE_TIMEOUT_MS);
  if (result.exitCode === 0) {
    const binary = result.stdout.trimEnd().split('\n').at(-1) ?? '';
    if (binary !== '') return binary;
    throw new JaegerHarnessError(`${ensureScript} succeeded but printed no binary path`);
  }
  const details = `${ensureScript} exited with ${String(result.exitCode)}:\n${tail(result.stderr, ERROR_TAIL_CHARS)}`;
  if (result.exitCode === ENSURE_UNAVAILABLE_EXIT_CODE || result.exitCode === 'ENOENT') {
    if (process.env.CI === 'true') {
      throw new JaegerHarnessError(`CI=true requires Jaeger, but this machine cannot build it. ${details}`);
    }
    throw new JaegerUnavailableError(`Jaeger unavailable (install Go >= 1.24 with access to its module proxy). ${details}`);
  }
  throw new JaegerHarnessError(`Could not build Jaeger. ${details}`);
}

/**
 * Starts the Jaeger binary on 127.0.0.1 with free ports and resolves once its
 * health endpoint answers 200.
 *
 * With `config: 'jaeger'` (the default) it runs collector-config/jaeger.yaml:
 * OTLP in, in-memory storage, query API. With `config: 'collector'` it runs
 * collector-config/otel-collector.yaml, exporting to `exportTo`.
 *
 * Rejects with {@link JaegerHarnessError} (including the process's log tail)
 * when the config does not load, the process exits, or it is not healthy
 * within `readyTimeoutMs`; the process is killed in that case.
 *
 * @example
 * const jaeger = await startJaeger();
 * const collector = await startJaeger({ config: 'collector', exportTo: jaeger.otlpGrpcEndpoint });
 * try {
 *   // send OTLP to `${collector.otlpHttpUrl}/v1/traces`, then:
 *   await waitForTraces(jaeger.queryUrl, 'my-service', (r) => listSpans(r).length > 0);
 * } finally {
 *   await collector.stop();
 *   await jaeger.stop();
 * }
 */
export function startJaeger(options?: StartJaegerOptions): Promise<JaegerProcess>;
export function startJaeger(options: StartCollectorOptions): Promise<CollectorProcess>;
export async function startJaeger(
  options: StartJaegerOptions | StartCollectorOptions = {},
): Promise<JaegerProcess | CollectorProcess> {
  const binary = await ensureJaegerBinary();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(binary, options);
    } catch (error) {
      const lostPortRace = error instanceof JaegerHarnessError && /address already in use/.test(error.message);
      if (!lostPortRace || attempt >= START_ATTEMPTS) throw error;
    }
  }
}

/**
 * Finds traces of `service` through `GET /api/v3/traces`
 * (`query.service_name`, `query.start_time_min`/`_max` as RFC 3339,
 * `query.operation_name`, `query.num_traces`).
 *
 * Resolves to the parsed body; "no traces found" (Jaeger answers 404) resolves
 * to an empty `result`. Rejects with {@link JaegerHarnessError} on any other
 * non-2xx answer.
 */
export async function queryTraces(queryUrl: string, query: TraceQuery): Promise<ApiV3TracesResponse> {
  const now = Date.now();
  const params = new URLSearchParams({
    'query.service_name': query.service,
    'query.start_time_min': (query.since ?? new Date(now - 3_600_000)).toISOString(),
    'query.start_time_max': (query.until ?? new Date(now + 60_000)).toISOString(),
    'query.num_traces': String(query.limit ?? DEFAULT_TRACE_LIMIT),
  });
  if (query.operation !== undefined) params.set('query.operation_name', query.operation);
  const found = await getApiV3(`${queryUrl}/api/v3/traces?${params.toString()}`);
  return found ?? { result: {} };
}

/**
 * Fetches one trace through `GET /api/v3/traces/{traceId}` (hex trace id).
 * Resolves to the parsed body, or `undefined` when Jaeger has no such trace.
 * Rejects with {@link JaegerHarnessError} on any other non-2xx answer.
 */
export async function getTrace(queryUrl: string, traceId: string): Promise<ApiV3TracesResponse | undefined> {
  return getApiV3(`${queryUrl}/api/v3/traces/${encodeURIComponent(traceId)}`);
}

/**
 * Polls {@link queryTraces} for `service` until `predicate` accepts the answer,
 * and resolves to that answer. Rejects with {@link JaegerHarnessError}, quoting
 * the last answer, when `timeoutMs` passes first.
 *
 * @example
 * const found = await waitForTraces(jaeger.queryUrl, 'checkout', (r) => listSpans(r).length >= 2, 10_000);
 */
export async function waitForTraces(
  queryUrl: string,
  service: string,
  predicate: (response: ApiV3TracesResponse) => boolean,
  timeoutMs = 15_000,
): Promise<ApiV3TracesResponse> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await queryTraces(queryUrl, { service });
    if (predicate(response)) return response;
    if (Date.now() >= deadline) {
      const last = tail(JSON.stringify(response), ERROR_TAIL_CHARS);
      throw new JaegerHarnessError(`No matching traces for service "${service}" within ${timeoutMs} ms; last answer: ${last}`);
    }
    await delay(QUERY_POLL_INTERVAL_MS);
  }
}

/** Flattens an api/v3 answer into its spans, each with its resource's attributes. */
export function listSpans(response: ApiV3TracesResponse | undefined): SpanWithResource[] {
  return (response?.result.resourceSpans ?? []).flatMap((resourceSpans) =>
    (resourceSpans.scopeSpans ?? []).flatMap((scopeSpans) =>
      (scopeSpans.spans ?? []).map((span) => ({ span, resourceAttributes: resourceSpans.resource?.attributes ?? [] })),
    ),
  );
}

/**
 * Reads OTLP/JSON attributes into a plain object: strings, booleans and
 * doubles as themselves, 64-bit ints as `bigint`, arrays and maps as JSON-ish
 * values. Keys that are absent stay absent, so `'key' in result` is a presence test.
 */
export function attributesOf(attributes: readonly OtlpKeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((attributes ?? []).map(({ key, value }) => [key, fromAnyValue(value)]));
}

function fromAnyValue(value: OtlpAnyValue | undefined): unknown {
  if (value === undefined) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return BigInt(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.bytesValue !== undefined) return value.bytesValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(fromAnyValue);
  if (value.kvlistValue !== undefined) return attributesOf(value.kvlistValue.values);
  return undefined;
}

async function getApiV3(url: string): Promise<ApiV3TracesResponse | undefined> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (error) {
    throw new JaegerHarnessError(`GET ${url} failed: ${String(error)}`, { cause: error });
  }
  const body = await response.text();
  if (response.status === 404) return undefined;
  if (!response.ok) {
    throw new JaegerHarnessError(`GET ${url} answered ${response.status}: ${tail(body, ERROR_TAIL_CHARS)}`);
  }
  try {
    return JSON.parse(body) as ApiV3TracesResponse;
  } catch (error) {
    throw new JaegerHarnessError(`GET ${url} answered non-JSON: ${tail(body, ERROR_TAIL_CHARS)}`, { cause: error });
  }
}

interface Endpoints {
  readonly env: Record<string, string>;
  readonly otlpGrpc: string;
  readonly otlpHttp: string;
  readonly health: string;
  readonly queryHttp?: string;
  readonly prometheus?: string;
}

async function endpointsFor(options: StartJaegerOptions | StartCollectorOptions): Promise<Endpoints> {
  if (options.config === 'collector') {
    const [otlpGrpc, otlpHttp, health, prometheus] = await freeEndpoints(4);
    return {
      otlpGrpc,
      otlpHttp,
      health,
      prometheus,
      env: {
        ISOTRACE_COLLECTOR_OTLP_GRPC_ENDPOINT: otlpGrpc,
        ISOTRACE_COLLECTOR_OTLP_HTTP_ENDPOINT: otlpHttp,
        ISOTRACE_COLLECTOR_HEALTH_ENDPOINT: health,
        ISOTRACE_COLLECTOR_PROMETHEUS_ENDPOINT: prometheus,
        ISOTRACE_COLLECTOR_EXPORT_ENDPOINT: options.exportTo,
        ISOTRACE_COLLECTOR_KEEP_TOOL_ARGUMENTS: String(options.keepToolArguments ?? false),
      },
    };
  }
  const [otlpGrpc, otlpHttp, health, queryHttp, queryGrpc] = await freeEndpoints(5);
  return {
    otlpGrpc,
    otlpHttp,
    health,
    queryHttp,
    env: {
      ISOTRACE_JAEGER_OTLP_GRPC_ENDPOINT: otlpGrpc,
      ISOTRACE_JAEGER_OTLP_HTTP_ENDPOINT: otlpHttp,
      ISOTRACE_JAEGER_HEALTH_ENDPOINT: health,
      ISOTRACE_JAEGER_QUERY_HTTP_ENDPOINT: queryHttp,
      ISOTRACE_JAEGER_QUERY_GRPC_ENDPOINT: queryGrpc,
    },
  };
}

async function startOnce(
  binary: string,
  options: StartJaegerOptions | StartCollectorOptions,
): Promise<JaegerProcess | CollectorProcess> {
  const endpoints = await endpointsFor(options);
  const configFile = options.configFile ?? configFiles[options.config ?? 'jaeger'];
  const child = spawn(binary, ['--config', configFile], {
    cwd: repoRoot,
    env: { ...process.env, ...endpoints.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const output = collectOutput(child);
  // A test runner that dies without calling stop() must not leave Jaeger behind.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const stop = runOnce(async () => {
    await stopChild(child, STOP_GRACE_MS);
    process.off('exit', killOnExit);
  });

  const healthUrl = `http://${endpoints.health}/status`;
  try {
    await waitForHealthy(child, healthUrl, output, options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  } catch (error) {
    await stop();
    throw error;
  }
  const started: CollectorProcess = {
    otlpHttpUrl: `http://${endpoints.otlpHttp}`,
    otlpGrpcEndpoint: endpoints.otlpGrpc,
    healthUrl,
    stop,
    logs: output.text,
    ...(endpoints.prometheus === undefined ? {} : { metricsUrl: `http://${endpoints.prometheus}/metrics` }),
  };
  return endpoints.queryHttp === undefined ? started : { ...started, queryUrl: `http://${endpoints.queryHttp}` };
}

async function waitForHealthy(
  child: ChildProcessWithoutNullStreams,
  healthUrl: string,
  output: ProcessOutput,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const describe = (reason: string): string =>
    `Jaeger (${child.spawnfile} ${child.spawnargs.slice(1).join(' ')}) did not become healthy: ${reason}\n` +
    `--- process output (tail) ---\n${tail(output.text(), ERROR_TAIL_CHARS)}`;
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(`spawning it failed: ${error.message}`));
    // 'close' fires once stdout and stderr are drained, so the tail is complete.
    child.once('close', (code, signal) => resolve(`it exited (code ${String(code)}, signal ${String(signal)})`));
  });
  let lastProblem = 'no answer yet';
  for (;;) {
    const outcome = await Promise.race([
      probeHealth(healthUrl).then((problem) => ({ problem })),
      exited.then((exitReason) => ({ exitReason })),
    ]);
    if ('exitReason' in outcome) throw new JaegerHarnessError(describe(outcome.exitReason));
    if (outcome.problem === undefined) return;
    lastProblem = outcome.problem;
    if (Date.now() >= deadline) {
      throw new JaegerHarnessError(describe(`${healthUrl} not 200 within ${timeoutMs} ms (last: ${lastProblem})`));
    }
    const exitReason = await Promise.race([exited, delay(HEALTH_POLL_INTERVAL_MS)]);
    if (typeof exitReason === 'string') throw new JaegerHarnessError(describe(exitReason));
  }
}

/** Resolves to undefined when healthy, otherwise to what was wrong. */
async function probeHealth(healthUrl: string): Promise<string | undefined> {
  try {
    const response = await fetch(healthUrl, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const body = await response.text();
    return response.status === 200 ? undefined : `${response.status} ${tail(body, 500)}`;
  } catch (error) {
    return String(error);
  }
}

/** `count` distinct `127.0.0.1:port` addresses that were free a moment ago. */
async function freeEndpoints(count: number): Promise<string[]> {
  // All held open together, so the kernel cannot hand out the same port twice.
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
    }
    return servers.map((server) => `127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

interface ProcessOutput {
  text(): string;
}

function collectOutput(child: ChildProcessWithoutNullStreams): ProcessOutput {
  let collected = '';
  const append = (chunk: string): void => {
    collected = tail(collected + chunk, LOG_TAIL_CHARS);
  };
  // Always drained, so a chatty process can never block on a full pipe.
  child.stdout.setEncoding('utf8').on('data', append);
  child.stderr.setEncoding('utf8').on('data', append);
  return { text: () => collected };
}


function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function tail(text: string, maxChars: number): string {
  return text.length > maxChars ? text.slice(-maxChars) : text;
}

/** Runs `fn` at most once; later calls share its promise. */
function runOnce(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}
