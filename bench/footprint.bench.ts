// What isotrace costs a service before it does anything: the install (beside
// @opentelemetry/sdk-node, which startTracing() is built on), `import 'isotrace'`
// in a fresh process, and the first task on a new worker thread. Everything runs
// in a scratch app that installed the packed package, as a consumer's would.
// Targets (issue 12): install adds ≤ 10 MB beyond sdk-node's own footprint;
// `import 'isotrace'` ≤ 150 ms; first task on a new worker thread ≤ 100 ms.
import { execFile } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { fmt, median, pick, quickNote } from './lib/harness.ts';
import { table, writeSection } from './lib/report.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const IMPORT_RUNS = Number(process.env.BENCH_ITERATIONS ?? pick(15, 5));
const WORKER_RUNS = Number(process.env.BENCH_ITERATIONS ?? pick(15, 5));
const MB = 1024 * 1024;
const SDK_NODE_VERSION = (JSON.parse(readFileSync(join(ROOT, 'node_modules/@opentelemetry/sdk-node/package.json'), 'utf8')) as { version: string }).version;
// Children load the installed, built package: never the tests' source mode.
const childEnv = { ...process.env, NODE_OPTIONS: '' };

async function pack(into: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', into], { cwd: ROOT });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  return join(into, filename);
}

async function installApp(dir: string, dependencies: Record<string, string>): Promise<string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'bench-app', private: true, type: 'module', dependencies }));
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: dir, timeout: 300_000 });
  return dir;
}

interface Size {
  bytes: number;
  files: number;
  /** Bytes per installed package (node_modules/<name> or node_modules/@scope/<name>). */
  packages: Map<string, number>;
}

/** Apparent size of a node_modules tree (file lengths, symlinks not followed): the same on every file system. */
function sizeOf(nodeModules: string): Size {
  const size: Size = { bytes: 0, files: 0, packages: new Map() };
  const walk = (dir: string, pkg: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path, pkg || packageOf(nodeModules, path));
      else if (entry.isFile()) {
        const bytes = lstatSync(path).size;
        size.bytes += bytes;
        size.files++;
        if (pkg) size.packages.set(pkg, (size.packages.get(pkg) ?? 0) + bytes);
      }
    }
  };
  walk(nodeModules, '');
  return size;
}

/** The top-level package a directory directly under node_modules names, else '' (scopes are not packages). */
function packageOf(nodeModules: string, dir: string): string {
  const relative = dir.slice(nodeModules.length + 1);
  if (relative.startsWith('.')) return '';
  return relative.startsWith('@') ? (relative.includes('/') ? relative : '') : relative;
}

function footprintSection(base: Size, withIsotrace: Size, appDir: string): string {
  const added = withIsotrace.bytes - base.bytes;
  const installed = (JSON.parse(readFileSync(join(appDir, 'node_modules/isotrace/package.json'), 'utf8')) as { version: string }).version;
  const extra = [...withIsotrace.packages].filter(([name]) => !base.packages.has(name)).sort((a, b) => b[1] - a[1]);
  const grown = [...withIsotrace.packages].filter(([name, bytes]) => base.packages.has(name) && bytes !== base.packages.get(name));
  const mb = (bytes: number): string => fmt(bytes / MB);
  return `### Install size

${table(
  ['install (npm, fresh scratch app)', 'node_modules (MB)', 'files'],
  [
    [`@opentelemetry/sdk-node@${SDK_NODE_VERSION} alone`, mb(base.bytes), base.files.toLocaleString('en-US')],
    [`isotrace@${installed} (packed tarball; brings sdk-node@${SDK_NODE_VERSION})`, mb(withIsotrace.bytes), withIsotrace.files.toLocaleString('en-US')],
    ['**added by isotrace**', `**${mb(added)}**`, (withIsotrace.files - base.files).toLocaleString('en-US')],
  ],
)}

Packages isotrace adds (largest first): ${extra.map(([name, bytes]) => `${name} ${mb(bytes)} MB`).join(', ') || 'none'}${grown.length ? `; packages that grew (another version, or copies nested in them): ${grown.map(([name, bytes]) => `${name} ${bytes > base.packages.get(name)! ? '+' : ''}${mb(bytes - base.packages.get(name)!)} MB`).join(', ')}` : ''}.
Apparent size (sum of file lengths), optional peers (redis, ws, fastify, ai, langchain, mcp, eslint) not installed. isotrace depends on
the OpenTelemetry SDK packages it shares with sdk-node in the very versions sdk-node pins, so npm installs one copy of each
(a newer patch of one would put a second copy beside every package that pins the older).
**Target: isotrace adds ≤ 10 MB beyond @opentelemetry/sdk-node — ${added <= 10 * MB ? 'met' : 'MISSED'} (+${mb(added)} MB).**`;
}

/** Runs `code` as an ES module in a fresh Node process in `cwd`; its stdout is one JSON line. */
async function child<T>(cwd: string, code: string): Promise<T> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], { cwd, env: childEnv, timeout: 120_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}

interface ImportSample {
  ms: number;
  cpuMs: number;
}

const importCode = (specifier: string): string => `
const cpu = process.cpuUsage(); const start = performance.now();
await import(${JSON.stringify(specifier)});
const ms = performance.now() - start; const used = process.cpuUsage(cpu);
console.log(JSON.stringify({ ms, cpuMs: (used.user + used.system) / 1000 }));`;

async function importSection(app: string): Promise<string> {
  const specifiers = ['@opentelemetry/api', 'isotrace', 'isotrace/otel', 'isotrace/workers', '@opentelemetry/sdk-node'];
  const samples = new Map(specifiers.map((s) => [s, [] as ImportSample[]]));
  // Rounds alternate the order, so a slow moment of the machine spreads over every variant.
  for (let round = 0; round < IMPORT_RUNS; round++) {
    const order = round % 2 === 0 ? specifiers : [...specifiers].reverse();
    for (const specifier of order) samples.get(specifier)!.push(await child<ImportSample>(app, importCode(specifier)));
  }
  const ms = (s: string): number => median(samples.get(s)!.map((x) => x.ms));
  const cpu = (s: string): number => median(samples.get(s)!.map((x) => x.cpuMs));
  const isotraceMs = ms('isotrace');
  return `### \`import\` in a fresh process

${table(
  ['import (cold, new process)', 'wall (ms)', 'CPU (ms)'],
  specifiers.map((s) => [`\`${s}\``, fmt(ms(s)), fmt(cpu(s))]),
)}

Median of ${IMPORT_RUNS} fresh \`node\` processes per import, rounds interleaved; time from before \`await import()\` to after it
(Node's own start-up not included), in the scratch app above. \`@opentelemetry/sdk-node\` is what startTracing() loads when it runs.
**Target: \`import 'isotrace'\` ≤ 150 ms — ${isotraceMs <= 150 ? 'met' : 'MISSED'} (${fmt(isotraceMs)} ms).**`;
}

const WORKER_FILE = `import { getRequestContext } from 'isotrace';
import { defineWorkerTask } from 'isotrace/workers';
export default defineWorkerTask(() => getRequestContext().tenantId);
`;
const PLAIN_WORKER_FILE = 'export default () => "plain";\n';

/** One process: per sample a new one-thread pool, timed from its creation to its first task's result. */
const WORKER_DRIVER = `
import { Piscina } from 'piscina';
import { startTracing, withRequestContext } from 'isotrace';
import { createWorkerPool } from 'isotrace/workers';
const runs = Number(process.argv[1]);
const tracing = await startTracing({ serviceName: 'bench-footprint', exporter: 'none', instrumentHttp: false });
const isotrace = [], plain = [], isotraceCpu = [], plainCpu = [];
const cpuMs = (since) => { const used = process.cpuUsage(since); return (used.user + used.system) / 1000; };
for (let i = 0; i < runs; i++) {
  let start = performance.now();
  let cpu = process.cpuUsage();
  const piscina = new Piscina({ filename: new URL('./plain-worker.mjs', import.meta.url).href, minThreads: 1, maxThreads: 1 });
  await piscina.run({});
  plain.push(performance.now() - start);
  plainCpu.push(cpuMs(cpu));
  await piscina.close();
  start = performance.now();
  cpu = process.cpuUsage();
  const pool = createWorkerPool({ filename: new URL('./first-task-worker.mjs', import.meta.url), minThreads: 1, maxThreads: 1 });
  const tenant = await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => pool.run({}));
  if (tenant !== 't1') throw new Error('the worker did not see the request: ' + tenant);
  isotrace.push(performance.now() - start);
  isotraceCpu.push(cpuMs(cpu));
  await pool.close();
}
await tracing.shutdown();
console.log(JSON.stringify({ isotrace, plain, isotraceCpu, plainCpu }));`;

async function workerSection(app: string): Promise<string> {
  writeFileSync(join(app, 'first-task-worker.mjs'), WORKER_FILE);
  writeFileSync(join(app, 'plain-worker.mjs'), PLAIN_WORKER_FILE);
  // piscina is isotrace's dependency, installed beside it: the baseline is the same pool without isotrace.
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', WORKER_DRIVER, String(WORKER_RUNS)], { cwd: app, env: childEnv, timeout: 300_000 });
  const { isotrace, plain, isotraceCpu, plainCpu } = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<'isotrace' | 'plain' | 'isotraceCpu' | 'plainCpu', number[]>;
  const isotraceMs = median(isotrace);
  return `### First task on a new worker thread

${table(
  ['new one-thread pool, first task', 'median (ms)', 'min / max (ms)', 'CPU, all threads (ms)'],
  [
    ['piscina, worker file importing nothing', fmt(median(plain)), `${fmt(Math.min(...plain))} / ${fmt(Math.max(...plain))}`, fmt(median(plainCpu))],
    ["isotrace createWorkerPool, worker file importing 'isotrace' and 'isotrace/workers', run inside a request", fmt(isotraceMs), `${fmt(Math.min(...isotrace))} / ${fmt(Math.max(...isotrace))}`, fmt(median(isotraceCpu))],
  ],
)}

${WORKER_RUNS} new pools each, alternating, in one process with startTracing() running; timed from the pool's creation to the first
result (thread start, module loading, the worker's tracing set-up and the task); CPU is process.cpuUsage() over the same span,
steadier than wall time on a shared machine. Most of it is loading modules in the new thread: @opentelemetry/api, core,
resources and sdk-trace (the worker's tracer provider) and isotrace's own, a few hundred ES modules.
**Target: first task on a new worker thread ≤ 100 ms — ${isotraceMs <= 100 ? 'met' : 'MISSED'} (${fmt(isotraceMs)} ms).**`;
}

const scratch = mkdtempSync(join(tmpdir(), 'isotrace-footprint-'));
try {
  const tarball = await pack(scratch);
  const sdkOnly = await installApp(join(scratch, 'sdk-node-only'), { '@opentelemetry/sdk-node': SDK_NODE_VERSION });
  // What a service installs: isotrace alone (it brings sdk-node, and npm adds the @opentelemetry/api peer).
  const withIsotrace = await installApp(join(scratch, 'isotrace'), { isotrace: `file:${tarball}` });
  const footprint = footprintSection(sizeOf(join(sdkOnly, 'node_modules')), sizeOf(join(withIsotrace, 'node_modules')), withIsotrace);
  const imports = await importSection(withIsotrace);
  const workers = await workerSection(withIsotrace);
  writeSection('footprint', 'Footprint: install size, import time, first worker task', `${footprint}\n\n${imports}\n\n${workers}${quickNote()}`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
