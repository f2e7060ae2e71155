/**
 * `isotrace audit` as a user runs it: the bin's source (sdk/src/cli/isotrace.ts,
 * no build needed) in a child process. Exit 0 clean, 1 violations, 2 usage or connection error,
 * 3 nothing audited or audit incomplete, with a message that says what to fix.
 * Jaeger is played by local HTTP servers here (one that answers whatever a test
 * sets, one that searches a set of traces the way Jaeger's api/v3 does);
 * test/e2e/audit-cli.test.ts runs the built bin against a real one.
 */
import { execFile } from 'node:child_process';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, type TestServer } from '../../helpers/http.ts';
import { closedPort } from '../../helpers/net.ts';

const CLI = fileURLToPath(new URL('../../../sdk/src/cli/isotrace.ts', import.meta.url));
const USAGE = /^Usage: isotrace audit --jaeger URL --service NAME/m;
const NO_TRACES = { status: 404, body: '{"error":{"httpCode":404,"message":"No traces found"}}' };

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A stand-in for Jaeger's query port: answers every request with `answer` and records the URLs asked for. */
interface StubJaeger {
  origin: string;
  answer: { status: number; body: string };
  requests: URL[];
  close(): Promise<void>;
}

async function startStubJaeger(): Promise<StubJaeger> {
  const stub: StubJaeger = { origin: '', answer: NO_TRACES, requests: [], close: async () => {} };
  const server: TestServer = await listen((req, res) => {
    stub.requests.push(new URL(req.url ?? '/', 'http://stub'));
    res.writeHead(stub.answer.status, { 'content-type': 'application/json' });
    res.end(stub.answer.body);
  });
  stub.origin = server.origin;
  stub.close = () => server.close();
  return stub;
}

const str = (value: string): { stringValue: string } => ({ stringValue: value });

interface TraceOptions {
  /** The tool span's tenant; other than t1 plants an ancestry violation. */
  toolTenant?: string;
  /** The tool span's parent; other than the request span's id leaves it without its request span. */
  toolParent?: string;
  /** When the trace started, in microseconds since the epoch. */
  startUs?: number;
}

/** One trace as api/v3 lists it: a request span (r1, t1, u1) and one tool span under it. */
function traceResourceSpans(traceId: string, { toolTenant = 't1', toolParent = '1111111111111111', startUs = Date.now() * 1000 }: TraceOptions = {}): unknown {
  const identity = (tenant: string): { key: string; value: unknown }[] => [
    { key: 'isotrace.request_id', value: str('r1') },
    { key: 'isotrace.tenant_id', value: str(tenant) },
    { key: 'user.id', value: str('u1') },
  ];
  const start = `${startUs}000`;
  return {
    resource: { attributes: [{ key: 'service.name', value: str('agent-api') }] },
    scopeSpans: [
      {
        spans: [
          { traceId, spanId: '1111111111111111', name: 'request', startTimeUnixNano: start, attributes: [...identity('t1'), { key: 'isotrace.request_span', value: { boolValue: true } }] },
          {
            traceId,
            spanId: '2222222222222222',
            parentSpanId: toolParent,
            name: 'execute_tool lookup',
            startTimeUnixNano: start,
            attributes: [...identity(toolTenant), { key: 'gen_ai.operation.name', value: str('execute_tool') }],
          },
        ],
      },
    ],
  };
}

function traceJson(traceId: string, toolTenant: string): string {
  return JSON.stringify({ result: { resourceSpans: [traceResourceSpans(traceId, { toolTenant })] } });
}

const traceIdOf = (i: number): string => i.toString(16).padStart(32, '0');

/** RFC 3339 with up to nanoseconds, in microseconds since the epoch (as Jaeger reads query.start_time_*). */
function microsOf(text: string): number {
  const match = /\.(\d+)Z$/.exec(text);
  const fraction = (match?.[1] ?? '').padEnd(6, '0').slice(0, 6);
  return Math.floor(Date.parse(text) / 1000) * 1_000_000 + Number(fraction);
}

/**
 * A stand-in for Jaeger's search: holds traces with start times and answers
 * `GET /api/v3/traces` as Jaeger's memory store does: the newest
 * `query.num_traces` traces starting within [start_time_min, start_time_max],
 * or Jaeger's 404 when none do.
 */
interface SearchingJaeger {
  origin: string;
  traces: Array<{ traceId: string; startUs: number; resourceSpans: unknown }>;
  requests: URL[];
  /** From this many requests on, answer 500 (Jaeger failing half-way); never when undefined. */
  failFrom?: number | undefined;
  close(): Promise<void>;
}

async function startSearchingJaeger(): Promise<SearchingJaeger> {
  const stub: SearchingJaeger = { origin: '', traces: [], requests: [], close: async () => {} };
  const server = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://stub');
    stub.requests.push(url);
    if (stub.failFrom !== undefined && stub.requests.length > stub.failFrom) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":{"httpCode":500,"message":"storage unavailable"}}');
      return;
    }
    const from = microsOf(url.searchParams.get('query.start_time_min') ?? '');
    const to = microsOf(url.searchParams.get('query.start_time_max') ?? '');
    const found = stub.traces
      .filter((trace) => trace.startUs >= from && trace.startUs <= to)
      .sort((a, b) => b.startUs - a.startUs)
      .slice(0, Number(url.searchParams.get('query.num_traces')));
    res.writeHead(found.length === 0 ? 404 : 200, { 'content-type': 'application/json' });
    res.end(found.length === 0 ? NO_TRACES.body : JSON.stringify({ result: { resourceSpans: found.map((trace) => trace.resourceSpans) } }));
  });
  stub.origin = server.origin;
  stub.close = () => server.close();
  return stub;
}

describe('isotrace audit: usage', () => {
  it.each(['audit --help', 'audit -h', '--help'])('isotrace %s prints the usage on stdout and exits 0', async (line) => {
    const result = await runCli(line.split(' '));

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(USAGE);
    expect(result.stdout).toContain('Exit status: 0 clean, 1 violations found, 2 usage or connection error,\n3 nothing audited or audit incomplete');
  });

  it.each([
    { why: 'no command', args: [], message: USAGE },
    { why: 'an unknown command', args: ['audti'], message: /isotrace: unknown command 'audti'/ },
    { why: 'a missing --jaeger', args: ['audit', '--service', 'agent-api'], message: /isotrace audit: --jaeger URL is required/ },
    { why: 'a missing --service', args: ['audit', '--jaeger', 'http://127.0.0.1:16686'], message: /isotrace audit: --service NAME is required/ },
    { why: 'an empty --service', args: ['audit', '--jaeger', 'http://127.0.0.1:16686', '--service', ''], message: /--service NAME is required/ },
    { why: 'a --jaeger that is not an http(s) URL', args: ['audit', '--jaeger', 'localhost:16686', '--service', 'a'], message: /--jaeger must be an http\(s\) URL; got localhost:16686/ },
    { why: '--jaeger without its value', args: ['audit', '--service', 'a', '--jaeger'], message: /Option '--jaeger <value>' argument missing/ },
    { why: 'a --since in words', args: ['audit', '--jaeger', 'http://j:16686', '--service', 'a', '--since', '1 hour'], message: /--since must look like 30s, 15m, 1h or 2d; got 1 hour/ },
    { why: 'a --since in weeks', args: ['audit', '--jaeger', 'http://j:16686', '--service', 'a', '--since', '2w'], message: /--since must look like 30s, 15m, 1h or 2d; got 2w/ },
    { why: 'a negative --since', args: ['audit', '--jaeger', 'http://j:16686', '--service', 'a', '--since', '-1h'], message: /--since/ },
    { why: 'an absurdly long --since', args: ['audit', '--jaeger', 'http://j:16686', '--service', 'a', '--since', '9999999999d'], message: /--since must be more than 0 and at most 3650d; got 9999999999d/ },
    { why: 'a --since too long for any date', args: ['audit', '--jaeger', 'http://j:16686', '--service', 'a', '--since', `${'9'.repeat(400)}s`], message: /--since must be more than 0 and at most 3650d/ },
    { why: 'a --since just past the bound', args: ['audit', '--jaeger', 'http://j:16686', '--service', 'a', '--since', '3651d'], message: /at most 3650d; got 3651d/ },
    { why: 'a --since of zero', args: ['audit', '--jaeger', 'http://j:16686', '--service', 'a', '--since', '0s'], message: /--since must be more than 0/ },
    { why: 'a --limit past the bound', args: ['audit', '--jaeger', 'http://j:16686', '--service', 'a', '--limit', '100001'], message: /--limit must be a whole number from 1 to 100000; got 100001/ },
    { why: 'a --limit in exponent form', args: ['audit', '--jaeger', 'http://j:16686', '--service', 'a', '--limit', '1e3'], message: /--limit must be a whole number/ },
    { why: 'a --limit of 0', args: ['audit', '--jaeger', 'http://j:16686', '--service', 'a', '--limit', '0'], message: /--limit must be a whole number from 1 to 100000; got 0/ },
    { why: 'a --limit that is not a number', args: ['audit', '--jaeger', 'http://j:16686', '--service', 'a', '--limit', 'ten'], message: /--limit must be a whole number from 1 to 100000; got ten/ },
    { why: 'a fractional --limit', args: ['audit', '--jaeger', 'http://j:16686', '--service', 'a', '--limit', '2.5'], message: /--limit must be a whole number/ },
    { why: 'an unknown flag', args: ['audit', '--jaeger', 'http://j:16686', '--service', 'a', '--verbose'], message: /isotrace audit: Unknown option '--verbose'/ },
    { why: 'a positional argument', args: ['audit', '--jaeger', 'http://j:16686', '--service', 'a', 'agent-api'], message: /Unexpected argument 'agent-api'/ },
  ])('$why: exit 2 with a message and the usage on stderr', async ({ args, message }) => {
    const result = await runCli(args);

    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(USAGE);
  });
});

describe('isotrace audit: talking to Jaeger', () => {
  let jaeger: StubJaeger;

  beforeAll(async () => {
    jaeger = await startStubJaeger();
  });
  afterAll(() => jaeger.close());

  it('connection refused: exit 2, "cannot reach Jaeger" with the URL and the cause', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;

    const result = await runCli(['audit', '--jaeger', url, '--service', 'agent-api']);

    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(new RegExp(`^isotrace audit: cannot reach Jaeger at ${url}: .*ECONNREFUSED`));
  });

  it('asks api/v3 for the service, the --since window and one more trace than --limit, under the --jaeger path', async () => {
    jaeger.answer = NO_TRACES;
    jaeger.requests = [];
    const before = Date.now();

    await runCli(['audit', '--jaeger', `${jaeger.origin}/jaeger/`, '--service', 'agent api', '--since', '15m', '--limit', '7']);

    expect(jaeger.requests).toHaveLength(1);
    const [request] = jaeger.requests;
    expect(request?.pathname).toBe('/jaeger/api/v3/traces');
    expect(request?.searchParams.get('query.service_name')).toBe('agent api');
    expect(request?.searchParams.get('query.num_traces')).toBe('8');
    const windowStart = Date.parse(request?.searchParams.get('query.start_time_min') ?? '');
    expect(windowStart).toBeGreaterThanOrEqual(before - 15 * 60_000);
    expect(windowStart).toBeLessThanOrEqual(Date.now() - 15 * 60_000);
    expect(Date.parse(request?.searchParams.get('query.start_time_max') ?? '')).toBeGreaterThan(Date.now());
  });

  it('Jaeger\'s own "No traces found" 404 (also its answer for an unknown service): exit 3, nothing audited, never a pass', async () => {
    jaeger.answer = NO_TRACES;

    const json = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'nobody', '--json']);
    const text = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'nobody', '--since', '5m']);

    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, status: 'nothing-audited', complete: true, traces: 0, requests: 0, toolSpans: 0, violations: [] });
    expect(json.stderr).toContain("isotrace audit: nothing audited: Jaeger has no traces of service 'nobody' that started in the last 1h (is the service name right?");
    expect(text.code).toBe(3);
    expect(text.stdout).toContain('NOTHING AUDITED: no traces; this is not a pass');
    expect(text.stdout).not.toContain('no span crossed');
  });

  it.each([
    { why: 'a 404 from something that is not Jaeger (wrong port)', status: 404, body: '404 page not found', message: /Jaeger answered 404 for \/api\/v3\/traces \(is http:\/\/127\.0\.0\.1:\d+ Jaeger's query port\?\): 404 page not found/ },
    { why: 'a server error', status: 500, body: '{"error":{"httpCode":500,"message":"search depth must be greater than 0"}}', message: /Jaeger answered 500 for \/api\/v3\/traces: .*search depth/ },
  ])('$why: exit 2 with a message, never a stack trace and never "clean"', async ({ status, body, message }) => {
    jaeger.answer = { status, body };

    const result = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'agent-api']);

    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it.each([
    { why: 'an answer that is not JSON', body: '<!doctype html><title>Jaeger UI</title>', message: /Jaeger's answer is not JSON \(is .* Jaeger's query port\?\): <!doctype html>/ },
    { why: 'JSON that is not a trace list', body: '{"status":"StatusOK"}', message: /Jaeger's answer is not an api\/v3 trace list/ },
    { why: 'a result without resourceSpans', body: '{"result":{}}', message: /Jaeger's answer is not an api\/v3 trace list, \{"result":\{"resourceSpans":\[…\]\}\} .*: \{"result":\{\}\}/ },
    { why: 'resourceSpans that is not a list', body: '{"result":{"resourceSpans":{}}}', message: /Jaeger's answer is not an api\/v3 trace list/ },
    { why: 'scopeSpans that is not a list', body: '{"result":{"resourceSpans":[{"scopeSpans":{"spans":[]}}]}}', message: /not a valid OTLP trace list \(result\.resourceSpans\[0\]\.scopeSpans must be an array; got an object\)/ },
    { why: 'a trace list with malformed spans', body: '{"result":{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":5,"spanId":"a","name":"x"}]}]}]}}', message: /not a valid OTLP trace list \(.*traceId must be a string; got number 5\)/ },
  ])('$why: exit 3 (nothing audited) with a message, never a stack trace and never "clean"', async ({ body, message }) => {
    jaeger.answer = { status: 200, body };

    const result = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'agent-api']);

    expect(result.code).toBe(3);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('a clean trace: exit 0 and the counts in the summary', async () => {
    jaeger.answer = { status: 200, body: traceJson('0af7651916cd43dd8448eb211c80319c', 't1') };

    const result = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'agent-api', '--since', '30s']);

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('isotrace audit: service agent-api, last 30s');
    expect(result.stdout).toMatch(/traces 1 {2}requests 1 {2}tool spans 1 {2}spans 2/);
    expect(result.stdout).toContain('violations 0');
  });

  it('a violation: exit 1, in plain words which request ran inside which, and a link to the trace under the --jaeger URL', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    jaeger.answer = { status: 200, body: traceJson(traceId, 't2') };

    const text = await runCli(['audit', '--jaeger', `${jaeger.origin}/jaeger/`, '--service', 'agent-api']);
    const json = await runCli(['audit', '--jaeger', `${jaeger.origin}/jaeger/`, '--service', 'agent-api', '--json']);

    expect(text.code).toBe(1);
    expect(text.stdout).toContain('violations 1 (ancestry.tenant_id 1)');
    expect(text.stdout).toContain(
      `VIOLATION ancestry.tenant_id: span 2222222222222222 'execute_tool lookup' of request r1 (tenant t2, user u1) ran inside request r1 (tenant t1, user u1), whose request span is 1111111111111111  ${jaeger.origin}/jaeger/trace/${traceId}`,
    );
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      status: 'violations',
      service: 'agent-api',
      violationsByCheck: { 'ancestry.tenant_id': 1 },
      violations: [
        {
          check: 'ancestry.tenant_id',
          traceId,
          spanId: '2222222222222222',
          expected: 't2',
          actual: 't1',
          spanIdentity: { requestId: 'r1', tenantId: 't2', userId: 'u1' },
          ranInside: { requestId: 'r1', tenantId: 't1', userId: 'u1', spanId: '1111111111111111' },
          link: `${jaeger.origin}/jaeger/trace/${traceId}`,
        },
      ],
    });
  });

  it('a span carrying identity whose request span Jaeger does not have: exit 1, missing-request-span, in plain words', async () => {
    const traceId = '5bf92f3577b34da6a3ce929d0e0e4736';
    jaeger.answer = { status: 200, body: JSON.stringify({ result: { resourceSpans: [traceResourceSpans(traceId, { toolParent: '9999999999999999' })] } }) };

    const result = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'agent-api']);

    expect(result.code).toBe(1);
    expect(result.stdout).toContain('violations 1 (missing-request-span 1)');
    expect(result.stdout).toContain(
      "VIOLATION missing-request-span: span 2222222222222222 'execute_tool lookup' of request r1 (tenant t1, user u1) ran inside no request span: span 9999999999999999 above it is not in the trace (dropped, unsampled or not exported)",
    );
  });

  it('an answer that never ends: stops reading at the bound, exit 3 "audit incomplete", instead of holding it all in memory', async () => {
    const endless = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const padding = Buffer.alloc(1024 * 1024, ' ');
      Readable.from(
        (function* answer() {
          yield Buffer.from('{"result":{"resourceSpans":[');
          for (;;) yield padding;
        })(),
      ).pipe(res);
    });
    try {
      const result = await runCli(['audit', '--jaeger', endless.origin, '--service', 'agent-api', '--json']);

      expect(result.code).toBe(3);
      expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, status: 'incomplete', complete: false, traces: 0 });
      expect(result.stderr).toMatch(/isotrace audit: audit incomplete: one trace starting between .* makes an answer over 32 MiB, too big to audit/);
    } finally {
      await endless.close();
    }
  });
});

describe('isotrace audit: paging through the --since window', () => {
  let jaeger: SearchingJaeger;

  beforeAll(async () => {
    jaeger = await startSearchingJaeger();
  });
  afterAll(() => jaeger.close());

  /** `count` traces over the last 20 minutes, newest first; the oldest one leaks when `leakOldest`. */
  function holdTraces(count: number, { leakOldest = false, sameStart = false } = {}): void {
    const now = Date.now() * 1000;
    jaeger.traces = Array.from({ length: count }, (_, i) => {
      const startUs = sameStart ? now - 60_000_000 : now - Math.floor((i * 20 * 60_000_000) / count) - 1;
      const traceId = traceIdOf(i + 1);
      return { traceId, startUs, resourceSpans: traceResourceSpans(traceId, { startUs, toolTenant: leakOldest && i === count - 1 ? 't-other' : 't1' }) };
    });
    jaeger.requests = [];
    jaeger.failFrom = undefined;
  }

  it('Jaeger failing half-way: reports what it audited, says the audit is incomplete, exit 2, never 0', async () => {
    holdTraces(250);
    jaeger.failFrom = 1;

    const result = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'agent-api', '--json']);

    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, status: 'incomplete', complete: false, traces: 100 });
    expect(result.stderr).toMatch(/isotrace audit: audit incomplete: Jaeger answered 500 for \/api\/v3\/traces: .*storage unavailable/);
  });

  it('audits every trace in the window, past the old 500-trace cut, and finds a leak in the oldest one', async () => {
    holdTraces(600, { leakOldest: true });

    const result = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'agent-api', '--since', '1h', '--json']);

    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as { traces: number; requests: number; complete: boolean; violations: { traceId: string }[] };
    // Each trace once, though the halved windows meet at their boundaries.
    expect(report).toMatchObject({ traces: 600, requests: 600, complete: true });
    expect(report.violations.map((v) => v.traceId)).toEqual([traceIdOf(600)]);
    expect(jaeger.requests.length).toBeGreaterThan(6);
    expect(jaeger.requests.every((request) => Number(request.searchParams.get('query.num_traces')) <= 100)).toBe(true);
  });

  it('a clean window of many pages: exit 0 with every trace counted', async () => {
    holdTraces(250);

    const result = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'agent-api', '--json']);

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: true, status: 'clean', complete: true, traces: 250, requests: 250, toolSpans: 250 });
  });

  it('more traces than --limit: exit 3 "audit incomplete", never a silent cut at --limit', async () => {
    holdTraces(250, { leakOldest: true });

    const text = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'agent-api', '--limit', '100']);
    const json = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'agent-api', '--limit', '100', '--json']);

    expect(text.code).toBe(3);
    expect(text.stdout).toContain('INCOMPLETE: more than 100 traces match (--limit 100); 100 were audited, the rest were not');
    expect(text.stderr).toContain('isotrace audit: audit incomplete: more than 100 traces match');
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, status: 'incomplete', complete: false, traces: 100 });
  });

  it('exactly --limit traces in the window: a complete audit, exit 0', async () => {
    holdTraces(100);

    const result = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'agent-api', '--limit', '100', '--json']);

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ complete: true, traces: 100 });
  });

  it('more traces starting in one microsecond than an answer can list: exit 3 "audit incomplete"', async () => {
    holdTraces(150, { sameStart: true });

    const result = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'agent-api']);

    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/audit incomplete: more than 100 traces start at \d{4}-\d\d-\d\dT[\d:]+\.\d{6}Z, more than one answer can list/);
  });

  it('audits a trace of a 20,000-span chain and names the one span that crossed', async () => {
    const traceId = traceIdOf(7);
    const spanId = (i: number): string => (i + 1).toString(16).padStart(16, '0');
    const identity = (tenant: string): unknown[] => [
      { key: 'isotrace.request_id', value: str('r1') },
      { key: 'isotrace.tenant_id', value: str(tenant) },
      { key: 'user.id', value: str('u1') },
    ];
    const spans = Array.from({ length: 20_000 }, (_, i) => ({
      traceId,
      spanId: spanId(i),
      ...(i === 0 ? {} : { parentSpanId: spanId(i - 1) }),
      name: i === 0 ? 'request' : `step ${i}`,
      attributes: i === 0 ? [...identity('t1'), { key: 'isotrace.request_span', value: { boolValue: true } }] : identity(i === 19_999 ? 't2' : 't1'),
    }));
    jaeger.traces = [{ traceId, startUs: Date.now() * 1000 - 1, resourceSpans: { resource: { attributes: [] }, scopeSpans: [{ spans: spans.reverse() }] } }];

    const result = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'agent-api', '--json']);

    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ spans: 20_000, violations: [{ check: 'ancestry.tenant_id', spanId: spanId(19_999), expected: 't2', actual: 't1' }] });
  });
});
