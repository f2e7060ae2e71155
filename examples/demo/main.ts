/**
 * The isotrace demo (`npm start`): the agent and inventory services under a
 * simulated load of concurrent users from several tenants, over HTTP and
 * WebSocket, using tools, a worker-thread tool, SharedState and downstream
 * calls; then the isolation audit and one request's trace. Each agent turn
 * runs on the Vercel AI SDK (generateText() with a scripted mock model, no
 * network) with its tools wrapped by isotraceTools() from `isotrace/ai-sdk`.
 *
 * Spans go over real OTLP to an embedded relay that keeps them for the audit;
 * when a collector listens on localhost:4318 (or --otlp URL) the relay also
 * forwards everything there, and with Jaeger on localhost:16686 the demo
 * prints the trace's link. Options: --tenants 10 --users 40 --turns 6
 * --otlp URL --jaeger URL --service-name agent-api --plant-leak global-registry
 * --record-tool-arguments --json. Exits 1 when the audit or a request failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { startTracing } from 'isotrace';
import { auditSpans, spansFromOtlpJson } from 'isotrace/testing';
import { createAgentService } from '../agent-service/server.ts';
import { progressBar, runLoad } from './load.ts';
import { startOtlpRelay } from './otlp-relay.ts';
import { auditSummary, showcaseTrace, traceTree } from './report.ts';

const { values: args } = parseArgs({
  options: {
    tenants: { type: 'string', default: '10' },
    users: { type: 'string', default: '40' },
    turns: { type: 'string', default: '6' },
    otlp: { type: 'string' },
    jaeger: { type: 'string', default: 'http://localhost:16686' },
    'service-name': { type: 'string', default: 'agent-api' },
    'plant-leak': { type: 'string' },
    'record-tool-arguments': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const tenants = positive('tenants');
const users = positive('users');
const turns = positive('turns');
if (args['plant-leak'] !== undefined && args['plant-leak'] !== 'global-registry') fail(`--plant-leak knows only 'global-registry'; got ${args['plant-leak']}`);

const upstream = args.otlp ?? ((await listening('localhost', 4318)) ? 'http://localhost:4318' : undefined);
const relay = await startOtlpRelay(upstream);
// The relay reads the spans for the demo's own audit as OTLP/JSON: both services export JSON to it (the default is protobuf).
process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = 'http/json';
const serviceSecret = randomBytes(16).toString('hex');
const inventory = await startInventory(relay.url, serviceSecret);
const tracing = await startTracing({
  serviceName: args['service-name'],
  endpoint: relay.url,
  propagateTo: [new URL(inventory.url).host],
  recordToolArguments: args['record-tool-arguments'],
  // Staging settings: listeners added by one request and run in another are audited too (callback-owner).
  auditCallbacks: true,
});
const agent = await createAgentService({ inventoryUrl: inventory.url, serviceSecret, plantLeak: args['plant-leak'] as 'global-registry' | undefined });

log(`isotrace demo: ${users} users of ${tenants} tenants, ${turns} turns each, over HTTP and WebSocket`);
log(`  agent ${agent.url} (service '${args['service-name']}'), inventory ${inventory.url}; spans via OTLP to ${upstream ?? 'the embedded relay only'}${args['plant-leak'] ? `; PLANTED LEAK: ${args['plant-leak']}` : ''}`);
log(`  each turn: Vercel AI SDK generateText() with a scripted mock model, tools ${args['plant-leak'] ? 'through one shared tool system (the planted bug)' : "through isotraceTools() (isotrace/ai-sdk)"}`);
const load = await runLoad({ agentUrl: agent.url, wsUrl: agent.wsUrl, tenants, users, turns, onProgress: progressBar(process.stderr) });

await agent.close();
await tracing.shutdown();
await inventory.stop();
await relay.close();

const spans = relay.payloads.flatMap(spansFromOtlpJson);
const { report, traceId } = printAudit();
await printJaegerHints(traceId);
const ok = report.ok && load.failures.length === 0 && load.crossed === 0;
const summary = args.json ? `${JSON.stringify({ ok, requests: load.requests, http: load.http, websocket: load.websocket, failures: load.failures.length, crossed: load.crossed, audit: report, forwardFailures: relay.forwardFailures() })}\n` : '';
// Exit once the summary is written: a pipe takes it in pieces, and exiting earlier cuts it off.
process.stdout.write(summary, () => process.exit(ok ? 0 : 1));

function printAudit(): { report: ReturnType<typeof auditSpans>; traceId: string | undefined } {
  const report = auditSpans(spans);
  log('');
  log(`Requests: ${load.requests} (${load.http} HTTP, ${load.websocket} WebSocket), ${load.failures.length} failed, ${load.crossed} answered for the wrong user`);
  for (const failure of load.failures.slice(0, 3)) log(`  failed: ${failure}`);
  for (const line of auditSummary(report, spans)) log(line);
  const traceId = showcaseTrace(spans);
  if (traceId) {
    log('');
    log(`One request's trace (${traceId}):`);
    for (const line of traceTree(spans, traceId)) log(`  ${line}`);
  }
  return { report, traceId };
}

/** With Jaeger running behind the collector: where to look, and how to audit it there. */
async function printJaegerHints(traceId: string | undefined): Promise<void> {
  if (!upstream || !(await answers(`${args.jaeger}/api/services`))) return;
  log('');
  if (traceId) log(`Jaeger: ${args.jaeger}/trace/${traceId}`);
  log(`Audit it there: npx isotrace audit --jaeger ${args.jaeger} --service ${args['service-name']} --since 15m`);
}

/** Runs the inventory service as its own process (its own service.name), on a free port. */
async function startInventory(otlpUrl: string, secret: string): Promise<{ url: string; stop(): Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, [new URL('../inventory-service/main.ts', import.meta.url).pathname], {
    env: { ...process.env, PORT: '0', OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl, SERVICE_TOKEN_SECRET: secret },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the inventory service exited (${code}) before listening:\n${output}`)));
  });
  return {
    url,
    stop: async () => {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 300 });
    const done = (up: boolean): void => {
      socket.destroy();
      resolve(up);
    };
    socket.once('connect', () => done(true)).once('error', () => done(false)).once('timeout', () => done(false));
  });
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

function positive(name: 'tenants' | 'users' | 'turns'): number {
  const value = Number(args[name]);
  if (!Number.isInteger(value) || value < 1) fail(`--${name} must be a positive whole number; got ${args[name]}`);
  return value;
}

function log(line: string): void {
  if (!args.json) console.log(line);
  else console.error(line);
}

function fail(message: string): never {
  console.error(`demo: ${message}`);
  process.exit(2);
}
