/**
 * `isotrace audit` as a user runs it: the built bin (dist/cli/isotrace.js) in
 * a child process. Exit 0 clean, 1 violations, 2 usage or connection error,
 * with a message that says what to fix. Jaeger is played by a local HTTP stub
 * here; test/e2e/audit-cli.test.ts runs the same command against a real one.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, type TestServer } from '../../helpers/http.ts';
import { closedPort } from '../../helpers/net.ts';

const CLI = fileURLToPath(new URL('../../../dist/cli/isotrace.js', import.meta.url));
const USAGE = /^Usage: isotrace audit --jaeger URL --service NAME/m;

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
  const stub: StubJaeger = { origin: '', answer: { status: 200, body: '{"result":{}}' }, requests: [], close: async () => {} };
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

/** One request span and one tool span under it; `toolTenant` other than t1 plants an ancestry violation. */
function traceJson(traceId: string, toolTenant: string): string {
  const identity = (tenant: string): { key: string; value: unknown }[] => [
    { key: 'isotrace.request_id', value: str('r1') },
    { key: 'isotrace.tenant_id', value: str(tenant) },
    { key: 'user.id', value: str('u1') },
  ];
  return JSON.stringify({
    result: {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: str('agent-api') }] },
          scopeSpans: [
            {
              spans: [
                { traceId, spanId: '1111111111111111', name: 'request', attributes: [...identity('t1'), { key: 'isotrace.request_span', value: { boolValue: true } }] },
                {
                  traceId,
                  spanId: '2222222222222222',
                  parentSpanId: '1111111111111111',
                  name: 'execute_tool lookup',
                  attributes: [...identity(toolTenant), { key: 'gen_ai.operation.name', value: str('execute_tool') }],
                },
              ],
            },
          ],
        },
      ],
    },
  });
}

describe('isotrace audit: usage', () => {
  it.each(['audit --help', 'audit -h', '--help'])('isotrace %s prints the usage on stdout and exits 0', async (line) => {
    const result = await runCli(line.split(' '));

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(USAGE);
    expect(result.stdout).toContain('Exit status: 0 clean, 1 violations found, 2 usage or connection error.');
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

  it('asks api/v3 for the service, the --since window and --limit traces, under the --jaeger path', async () => {
    jaeger.answer = { status: 200, body: '{"result":{}}' };
    jaeger.requests = [];
    const before = Date.now();

    const result = await runCli(['audit', '--jaeger', `${jaeger.origin}/jaeger/`, '--service', 'agent api', '--since', '15m', '--limit', '7']);

    expect(result.code).toBe(0);
    expect(jaeger.requests).toHaveLength(1);
    const [request] = jaeger.requests;
    expect(request?.pathname).toBe('/jaeger/api/v3/traces');
    expect(request?.searchParams.get('query.service_name')).toBe('agent api');
    expect(request?.searchParams.get('query.num_traces')).toBe('7');
    const windowStart = Date.parse(request?.searchParams.get('query.start_time_min') ?? '');
    expect(windowStart).toBeGreaterThanOrEqual(before - 15 * 60_000);
    expect(windowStart).toBeLessThanOrEqual(Date.now() - 15 * 60_000);
    expect(Date.parse(request?.searchParams.get('query.start_time_max') ?? '')).toBeGreaterThan(Date.now());
  });

  it('Jaeger\'s own "No traces found" 404 is an empty, clean audit', async () => {
    jaeger.answer = { status: 404, body: '{"error":{"httpCode":404,"message":"No traces found"}}' };

    const result = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'nobody', '--json']);

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: true, traces: 0, requests: 0, toolSpans: 0, violations: [] });
  });

  it.each([
    { why: 'a 404 from something that is not Jaeger (wrong port)', status: 404, body: '404 page not found', message: /Jaeger answered 404 for \/api\/v3\/traces \(is http:\/\/127\.0\.0\.1:\d+ Jaeger's query port\?\): 404 page not found/ },
    { why: 'a server error', status: 500, body: '{"error":{"httpCode":500,"message":"search depth must be greater than 0"}}', message: /Jaeger answered 500 for \/api\/v3\/traces: .*search depth/ },
    { why: 'an answer that is not JSON', status: 200, body: '<!doctype html><title>Jaeger UI</title>', message: /Jaeger's answer is not JSON \(is .* Jaeger's query port\?\): <!doctype html>/ },
    { why: 'JSON that is not a trace list', status: 200, body: '{"status":"StatusOK"}', message: /Jaeger's answer is not an api\/v3 trace list/ },
    { why: 'a trace list with malformed spans', status: 200, body: '{"result":{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":5,"spanId":"a","name":"x"}]}]}]}}', message: /Jaeger's answer is not a valid OTLP trace list/ },
  ])('$why: exit 2 with a message, never a stack trace and never "clean"', async ({ status, body, message }) => {
    jaeger.answer = { status, body };

    const result = await runCli(['audit', '--jaeger', jaeger.origin, '--service', 'agent-api']);

    expect(result.code).toBe(2);
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

  it('a violation: exit 1, the check, the span and a link to the trace under the --jaeger URL', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    jaeger.answer = { status: 200, body: traceJson(traceId, 't2') };

    const text = await runCli(['audit', '--jaeger', `${jaeger.origin}/jaeger/`, '--service', 'agent-api']);
    const json = await runCli(['audit', '--jaeger', `${jaeger.origin}/jaeger/`, '--service', 'agent-api', '--json']);

    expect(text.code).toBe(1);
    expect(text.stdout).toContain('violations 1 (ancestry.tenant_id 1)');
    expect(text.stdout).toContain(`VIOLATION ancestry.tenant_id: span 'execute_tool lookup' expected t1, actual t2  ${jaeger.origin}/jaeger/trace/${traceId}`);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      service: 'agent-api',
      violationsByCheck: { 'ancestry.tenant_id': 1 },
      violations: [{ check: 'ancestry.tenant_id', traceId, spanId: '2222222222222222', link: `${jaeger.origin}/jaeger/trace/${traceId}` }],
    });
  });
});
