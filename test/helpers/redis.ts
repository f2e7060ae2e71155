/**
 * Test helper: a private `redis-server` on 127.0.0.1 for the RedisStore tests.
 *
 * Each call starts its own server on a free port with no persistence, in a
 * temp dir, so tests never touch a system Redis and never share data. When
 * redis-server is missing, scripts/ensure-redis.sh installs Debian's package
 * (root and apt-get needed). Failures throw; nothing here skips.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closedPort } from './net.js';

/** A running redis-server of one test file. */
export interface TestRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Kills the server (SIGKILL: like a crash, connections drop). Safe to call when stopped. */
  stop(): Promise<void>;
  /** Starts the server again on the same port (after stop(); stops it first if running). */
  restart(): Promise<void>;
  /** Suspends the server (SIGSTOP): connections stay open but nothing answers, like a hung Redis. */
  freeze(): void;
  /** Resumes a frozen server (SIGCONT). */
  thaw(): void;
}

/** redis-server could not be installed or started; the message says why and holds its output. */
export class RedisServerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = this.constructor.name;
  }
}

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const ensureScript = join(repoRoot, 'scripts/ensure-redis.sh');
// A first run may install the package with apt-get.
const ENSURE_TIMEOUT_MS = 5 * 60_000;
const READY_TIMEOUT_MS = 10_000;
const PING_INTERVAL_MS = 50;
const START_ATTEMPTS = 3;
const OUTPUT_TAIL_CHARS = 4000;

/**
 * Starts a redis-server on a free 127.0.0.1 port and resolves once it answers
 * PING. Throws RedisServerError (with the server's output) when it cannot be
 * installed or does not answer within 10 s.
 *
 * @example
 * const redis = await startRedis();
 * const store = new RedisStore({ url: redis.url });
 * // …
 * await store.close();
 * await redis.stop();
 */
export async function startRedis(): Promise<TestRedis> {
  const binary = await ensureRedisServer();
  const dir = await mkdtemp(join(tmpdir(), 'isotrace-redis-'));
  // stop() removes it too; this covers a test process that ends without stop().
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  let server: RunningServer | undefined;
  let port = 0;
  // A port found free can be taken before redis-server binds it: retry with a new one.
  for (let attempt = 1; server === undefined; attempt++) {
    port = await closedPort();
    try {
      server = await startServer(binary, port, dir);
    } catch (error) {
      if (attempt >= START_ATTEMPTS || !(error instanceof PortInUseError)) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
  let current: RunningServer | undefined = server;
  const stop = async (): Promise<void> => {
    const running = current;
    current = undefined;
    await running?.kill();
    await rm(dir, { recursive: true, force: true });
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    restart: async () => {
      await stop();
      await mkdir(dir, { recursive: true });
      current = await startServer(binary, port, dir);
    },
    freeze: () => current?.signal('SIGSTOP'),
    thaw: () => current?.signal('SIGCONT'),
  };
}

interface RunningServer {
  kill(): Promise<void>;
  signal(signal: NodeJS.Signals): void;
}

class PortInUseError extends RedisServerError {}

async function ensureRedisServer(): Promise<string> {
  const { code, stdout, stderr } = await run('bash', [ensureScript], ENSURE_TIMEOUT_MS);
  const binary = stdout.trimEnd().split('\n').at(-1) ?? '';
  if (code === 0 && binary !== '') return binary;
  const ci = process.env.CI === 'true' ? ' (CI=true: the Redis tests are required)' : '';
  throw new RedisServerError(`redis-server is not available and ${ensureScript} could not install it (exit ${String(code)})${ci}:\n${tail(stderr)}`);
}

async function startServer(binary: string, port: number, dir: string): Promise<RunningServer> {
  const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The server must not outlive the test process, whatever happens to the test.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = tail(output + chunk.toString('utf8'));
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let spawnError: Error | undefined;
  let gone = false;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      gone = true;
      resolve();
    });
    // A spawn failure (ENOENT…) arrives as 'error', without 'exit'.
    child.once('error', (error) => {
      spawnError = error;
      gone = true;
      resolve();
    });
  });
  void exited.then(() => process.off('exit', killOnExit));
  try {
    await Promise.race([waitForPing(port, () => gone), exited.then(() => Promise.reject(spawnError ?? new Error(`redis-server exited (code ${String(child.exitCode)})`)))]);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    const message = `redis-server on 127.0.0.1:${port} did not start: ${error instanceof Error ? error.message : String(error)}\n--- redis-server output (tail) ---\n${output}`;
    if (/Address already in use/i.test(output)) throw new PortInUseError(message, { cause: error });
    throw new RedisServerError(message, { cause: error });
  }
  return {
    kill: () => killChild(child, exited),
    signal: (signal) => {
      child.kill(signal);
    },
  };
}

async function waitForPing(port: number, gone: () => boolean): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError: unknown;
  while (Date.now() < deadline && !gone()) {
    try {
      if ((await ping(port)).startsWith('+PONG')) return;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, PING_INTERVAL_MS));
  }
  throw new Error(`no PONG within ${READY_TIMEOUT_MS} ms`, { cause: lastError });
}

/** One inline PING over a raw socket (no client library: the helper tests nothing of it). */
function ping(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(1000, () => socket.destroy(new Error('PING timed out')));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) {
        socket.end();
        resolve(reply);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`connection closed before a reply (${JSON.stringify(reply)})`)));
  });
}

async function killChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await exited;
}

function run(command: string, args: string[], timeout: number): Promise<{ code: number | string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : (error.code ?? null), stdout, stderr });
    });
  });
}

function tail(text: string): string {
  return text.length > OUTPUT_TAIL_CHARS ? text.slice(-OUTPUT_TAIL_CHARS) : text;
}
