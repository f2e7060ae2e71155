/**
 * Regression test for GHSA-8988-4f7v-96qf (CVE-2026-54285), "OpenTelemetry
 * Core: unbounded memory allocation in W3C Baggage propagation" (moderate):
 * W3CBaggagePropagator.extract() in @opentelemetry/core < 2.8.0 parsed an
 * inbound `baggage` header without the W3C Baggage limits, so a client's
 * oversized header (huge numbers of members, separators or properties) cost
 * memory and CPU in proportion to its size. Fixed in 2.8.0, which stops at
 * 180 members, skips members over 4096 bytes and keeps at most 8192 bytes.
 *
 * The input class goes through isotrace's real inbound path (httpRequestContext
 * on node:http, trusted and untrusted peers; also a server whose operator
 * raised maxHeaderSize to 4 MiB) and through every installed copy of
 * W3CBaggagePropagator.extract directly (megabytes, in a worker thread so a
 * hang is detected and stopped). Every installed @opentelemetry/core must be
 * at or above the fixed version.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { getRequestContext } from 'isotrace';
import { httpRequestContext } from 'isotrace/http';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import type { ExtractOutcome, HostileBaggage } from '../fixtures/faults/baggage-extract-worker.ts';
import { listen, rawRequest, type TestServer } from '../helpers/http.ts';
import { baggageEntries, downstreamHeaders, identifyFromBearer, settles, trustMeshPeer, watchForCrashes, type CrashWatch } from './fuzz-helpers.ts';

const ADVISORY = 'GHSA-8988-4f7v-96qf';
const FIXED_VERSION = '2.8.0';
const DOWNSTREAM = 'http://inventory.internal/items';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EXTRACT_WORKER = new URL('../fixtures/faults/baggage-extract-worker.ts', import.meta.url);

const W3C_MAX_MEMBERS = 180;
const W3C_MAX_BYTES = 8192;

let kit: TestTracing;
let service: TestServer;
let roomy: TestServer;
let watch: CrashWatch;

async function serve(_req: IncomingMessage, res: ServerResponse): Promise<void> {
  const ctx = getRequestContext();
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ tenantId: ctx.tenantId, userId: ctx.userId, downstream: downstreamHeaders(DOWNSTREAM) }));
}

beforeAll(async () => {
  watch = watchForCrashes();
  kit = await setupTestTracing({ propagateTo: ['inventory.internal'] });
  const listener = httpRequestContext({ identify: identifyFromBearer, trustInbound: trustMeshPeer }, serve);
  service = await listen(listener);
  // Some operators raise node's 16 KiB header limit (large cookies, JWTs): then the whole header reaches the parser.
  roomy = await listen(createServer({ maxHeaderSize: 4 * 2 ** 20 }, listener));
});

afterEach(() => {
  kit.reset();
  expect(watch.crashes).toEqual([]);
});

afterAll(async () => {
  await service?.close();
  await roomy?.close();
  await kit?.shutdown();
  watch?.uninstall();
});

/** The advisory's input class: separators, members and properties in bulk, `bytes` long. */
function hostileBaggage(bytes: number): Array<[string, string]> {
  const fill = (unit: string): string => unit.repeat(Math.floor(bytes / unit.length));
  const numbered = (unit: (i: number) => string): string => {
    let out = '';
    for (let i = 0; out.length + 16 < bytes; i++) out += unit(i);
    return out;
  };
  return [
    ['commas', fill(',')],
    ['semicolons', fill(';')],
    ['equals signs', fill('=')],
    ['mixed separators', fill(',;=')],
    ['empty members', fill(' , ')],
    ['distinct members', numbered((i) => `k${i}=v,`)],
    ['one key repeated', fill('k=v,')],
    ['identity keys repeated', fill('isotrace.tenant_id=victim,isotrace.user_id=victim,')],
    ['one member with repeated properties', `k=v${fill(';p=1')}`],
    ['members with repeated properties', numbered((i) => `k${i}=v;p;q=1;r;s=2;t,`)],
    ['properties only', fill(';p')],
    ['one huge key', `${fill('k')}=v`],
    ['invalid percent-encoding', fill('%E0%A4%A=%ZZ,')],
  ];
}

interface Answer {
  tenantId: string;
  userId: string;
  downstream: Record<string, string>;
}

/** Sends one hostile baggage header and checks the request still runs as identify() says, with bounded baggage downstream. */
async function expectHandled(server: TestServer, what: string, baggage: string, trusted: boolean): Promise<void> {
  const response = await settles(
    rawRequest(server.port, { headers: [['authorization', 'Bearer acme:alice'], ...(trusted ? ([['x-mesh-peer', 'verified']] as Array<[string, string]>) : []), ['baggage', baggage]] }),
    `${what} (${baggage.length} bytes, ${trusted ? 'trusted' : 'untrusted'})`,
  );
  expect(response.status, `${what}: ${response.body.slice(0, 200)}`).toBe(200);
  const answer = response.json<Answer>();
  expect([answer.tenantId, answer.userId]).toEqual(['acme', 'alice']);
  const sent = baggageEntries(answer.downstream.baggage);
  expect(sent.get('isotrace.tenant_id'), what).toBe('acme');
  expect(sent.get('isotrace.user_id'), what).toBe('alice');
  expect(sent.size, what).toBeLessThanOrEqual(W3C_MAX_MEMBERS);
  expect((answer.downstream.baggage ?? '').length, what).toBeLessThanOrEqual(W3C_MAX_BYTES);
}

/** Ordinary requests answered while the hostile ones are in flight: the server stays responsive. */
async function ordinaryRequests(server: TestServer, count: number): Promise<void> {
  const responses = await Promise.all(Array.from({ length: count }, (_, i) => rawRequest(server.port, { headers: [['authorization', `Bearer t${i}:u${i}`]] })));
  responses.forEach((response, i) => {
    expect(response.status).toBe(200);
    expect(response.json<Answer>().tenantId).toBe(`t${i}`);
  });
}

describe(`${ADVISORY}: the baggage-parsing DoS class through the real inbound path`, () => {
  it.each([false, true])('a default server (16 KiB header limit), trusted peer: %s — every input is answered 200 with identify()\'s identity and bounded baggage', async (trusted) => {
    const inputs = hostileBaggage(15 * 1024);
    await settles(
      Promise.all([...inputs.map(([what, baggage]) => expectHandled(service, what, baggage, trusted)), ordinaryRequests(service, 20)]),
      'hostile and ordinary requests',
    );
    await ordinaryRequests(service, 5);
  });

  it.each([false, true])('a server with maxHeaderSize raised to 4 MiB, 1 MiB headers, trusted peer: %s — still answered, still bounded', async (trusted) => {
    for (const [what, baggage] of hostileBaggage(2 ** 20)) {
      await settles(Promise.all([expectHandled(roomy, what, baggage, trusted), ordinaryRequests(roomy, 5)]), what);
    }
  });

  it('100 repeated baggage headers (joined by node:http) are bounded like one', async () => {
    const headers: Array<[string, string]> = Array.from({ length: 100 }, (_, i) => ['baggage', `h${i}a=1,h${i}b=2;p,,;`]);
    const response = await settles(rawRequest(service.port, { headers: [['authorization', 'Bearer acme:alice'], ['x-mesh-peer', 'verified'], ...headers] }), '100 baggage headers');
    expect(response.status).toBe(200);
    const sent = baggageEntries(response.json<Answer>().downstream.baggage);
    expect(sent.get('isotrace.tenant_id')).toBe('acme');
    expect(sent.size).toBeLessThanOrEqual(W3C_MAX_MEMBERS);
  });
});

// ---------------------------------------------------------------- every installed copy

interface InstalledCopy {
  dir: string;
  version: string;
}

/** Every @opentelemetry/core under node_modules (nested copies included), by walking the tree. */
function installedCores(root: string): InstalledCopy[] {
  const found: InstalledCopy[] = [];
  const visit = (nodeModules: string): void => {
    let names: string[];
    try {
      names = readdirSync(nodeModules);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const packages = name.startsWith('@') ? readdirSync(join(nodeModules, name)).map((sub) => join(name, sub)) : [name];
      for (const pkg of packages) {
        const dir = join(nodeModules, pkg);
        if (pkg === join('@opentelemetry', 'core')) {
          found.push({ dir, version: (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version });
        }
        visit(join(dir, 'node_modules'));
      }
    }
  };
  visit(join(root, 'node_modules'));
  return found;
}

/** -1, 0 or 1 as `a` is below, at or above `b` (numeric major.minor.patch; a pre-release is below its release). */
function compareVersions(a: string, b: string): number {
  const parse = (v: string): [number[], boolean] => {
    const [core = '', pre] = v.split('-', 2);
    return [core.split('.').map(Number), pre !== undefined];
  };
  const [na, preA] = parse(a);
  const [nb, preB] = parse(b);
  for (let i = 0; i < 3; i++) if ((na[i] ?? 0) !== (nb[i] ?? 0)) return (na[i] ?? 0) < (nb[i] ?? 0) ? -1 : 1;
  return preA === preB ? 0 : preA ? -1 : 1;
}

/** The directory of the @opentelemetry/core that isotrace's inbound path (sdk/src/http, dist/http alike) resolves. */
function coreUsedByIsotrace(): string {
  let dir = dirname(createRequire(join(ROOT, 'sdk/src/http/internal/inbound.ts')).resolve('@opentelemetry/core'));
  while (!existsSync(join(dir, 'package.json')) || (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name !== '@opentelemetry/core') dir = dirname(dir);
  return realpathSync(dir);
}

/** Runs the inputs through one copy's W3CBaggagePropagator.extract in a worker; a hang fails (and stops) it. */
async function extractInWorker(coreDir: string, inputs: HostileBaggage[]): Promise<ExtractOutcome[]> {
  const worker = new Worker(EXTRACT_WORKER, { workerData: { coreDir, inputs } });
  const outcome = new Promise<ExtractOutcome[]>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`extract worker exited with code ${code} before answering`)));
  });
  try {
    return await settles(outcome, `W3CBaggagePropagator.extract of ${coreDir}`);
  } finally {
    await worker.terminate();
  }
}

const TEN_MIB = 10 * 2 ** 20;
/** Megabyte inputs of the advisory's class, far past any HTTP header limit. */
const DIRECT_INPUTS: HostileBaggage[] = [
  { name: '10 MiB of commas', unit: ',', count: TEN_MIB },
  { name: '10 MiB of semicolons', unit: ';', count: TEN_MIB },
  { name: '10 MiB of equals signs', unit: '=', count: TEN_MIB },
  { name: '10 MiB of mixed separators', unit: ',;=', count: TEN_MIB / 3 },
  { name: '1,000,000 distinct members', unit: 'k{i}=v,', count: 1_000_000 },
  { name: '2,000,000 members of one key', unit: 'k=v,', count: 2_000_000 },
  { name: 'one member with 2,000,000 properties', prefix: 'k=v', unit: ';p=1', count: 2_000_000 },
  { name: '500,000 members with repeated properties', unit: 'k{i}=v;p;q=1;r,', count: 500_000 },
  { name: 'a 10 MiB key', unit: 'k', count: TEN_MIB, suffix: '=v' },
  { name: '1,000,000 invalid percent-encodings', unit: '%E0%A4%A=%ZZ,', count: 1_000_000 },
  { name: '10,000 baggage headers of 1,000 members', unit: 'k{i}=v,', count: 1_000, headers: 10_000 },
];

describe(`${ADVISORY}: W3CBaggagePropagator.extract directly, in every installed @opentelemetry/core`, () => {
  const copies = installedCores(ROOT);

  it(`finds the copies, including the one isotrace's inbound path loads`, () => {
    expect(copies.length).toBeGreaterThan(0);
    // isotrace/http imports W3CBaggagePropagator from the @opentelemetry/core its package resolves.
    expect(copies.map((copy) => realpathSync(copy.dir))).toContain(coreUsedByIsotrace());
  });

  it(`every installed copy is at or above the fixed version ${FIXED_VERSION}`, () => {
    const vulnerable = copies.filter((copy) => compareVersions(copy.version, FIXED_VERSION) < 0).map((copy) => `${copy.dir} (${copy.version})`);
    console.log(`@opentelemetry/core copies: ${[...new Set(copies.map((copy) => copy.version))].join(', ')} (${copies.length} installs)`);
    expect(vulnerable, `copies affected by ${ADVISORY}`).toEqual([]);
  });

  it('the copy isotrace uses bounds every megabyte input: at most 180 members, each <= 4096 bytes, re-injected <= 8192 bytes', async () => {
    const outcomes = await extractInWorker(coreUsedByIsotrace(), DIRECT_INPUTS);
    expect(outcomes.map((o) => o.name)).toEqual(DIRECT_INPUTS.map((i) => i.name));
    for (const outcome of outcomes) {
      expect(outcome.inputBytes, outcome.name).toBeGreaterThanOrEqual(2 ** 20);
      expect(outcome.entries, outcome.name).toBeLessThanOrEqual(W3C_MAX_MEMBERS);
      expect(outcome.longestEntry, outcome.name).toBeLessThanOrEqual(4096);
      expect(outcome.reinjectedBytes, outcome.name).toBeLessThanOrEqual(W3C_MAX_BYTES);
    }
  });

  it('one copy of every other installed version bounds a million members and 10 MiB of separators too', async () => {
    const inputs = [DIRECT_INPUTS[0]!, DIRECT_INPUTS[4]!, DIRECT_INPUTS[6]!];
    const isotraceCopy = coreUsedByIsotrace();
    const isotraceVersion = copies.find((copy) => realpathSync(copy.dir) === isotraceCopy)!.version;
    const others = [...new Map(copies.filter((copy) => copy.version !== isotraceVersion).map((copy) => [copy.version, copy.dir])).values()];
    for (const dir of others) {
      for (const outcome of await extractInWorker(dir, inputs)) {
        expect(outcome.entries, `${dir}: ${outcome.name}`).toBeLessThanOrEqual(W3C_MAX_MEMBERS);
        expect(outcome.reinjectedBytes, `${dir}: ${outcome.name}`).toBeLessThanOrEqual(W3C_MAX_BYTES);
      }
    }
  });
});
