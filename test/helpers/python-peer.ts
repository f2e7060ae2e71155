/**
 * Test helper for the Python interop peer: a real HTTP service traced with the
 * official OpenTelemetry Python SDK (test/fixtures/python-peer/peer.py).
 *
 * The venv is built on first use by scripts/ensure-python-peer.sh and reused
 * afterwards, so the first call can take a few seconds longer than the rest.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { afterAll, beforeAll, type TestContext } from 'vitest';
import { ENSURE_UNAVAILABLE_EXIT_CODE, runEnsureScript } from './ensure-script.ts';
import { stopChild } from './process.ts';

/** A running peer. */
export interface PythonPeer {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  /** Stops the peer (SIGTERM, then SIGKILL after a bound). Safe to call twice. */
  stop(): Promise<void>;
}

/** The peer failed to install or start; `cause` holds the underlying error, if any. */
export class PythonPeerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = this.constructor.name;
  }
}

/**
 * This machine cannot provide the peer (no usable python3, no venv module, or
 * the pinned packages could not be installed). Only thrown outside CI, so a
 * test may skip on it with the message as the printed reason; with
 * `CI=true` the same condition is a plain {@link PythonPeerError}.
 */
export class PythonPeerUnavailableError extends PythonPeerError {}

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const ensureScript = `${repoRoot}scripts/ensure-python-peer.sh`;
const peerScript = `${repoRoot}test/fixtures/python-peer/peer.py`;

// A first run installs packages from PyPI; later runs take well under a second.
const ENSURE_TIMEOUT_MS = 5 * 60_000;
// The first start installs the venv, within ENSURE_TIMEOUT_MS, then waits for the peer.
const INSTALL_TIMEOUT_MS = ENSURE_TIMEOUT_MS + 60_000;
const LISTENING_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;
const STDERR_TAIL_CHARS = 4_000;

/**
 * Ensures the venv, spawns the peer on a free 127.0.0.1 port and resolves once
 * it prints `LISTENING <port>`.
 *
 * Rejects with {@link PythonPeerUnavailableError} when this machine lacks
 * Python (never when `process.env.CI === 'true'`), and with
 * {@link PythonPeerError} (including the peer's stderr tail) when the install
 * or the start fails or takes longer than 20 s.
 *
 * @example
 * const peer = await startPythonPeer();
 * try {
 *   const reply = await fetch(`${peer.url}/echo-context`, { headers: { traceparent } });
 * } finally {
 *   await peer.stop();
 * }
 */
export async function startPythonPeer(): Promise<PythonPeer> {
  const python = await ensurePythonVenv();
  const child = spawn(python, [peerScript, '--port', '0', '--exit-on-stdin-eof'], {
    cwd: repoRoot,
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderr = collectTail(child);
  const port = await waitForListening(child, stderr);
  return { url: `http://127.0.0.1:${port}`, stop: runOnce(() => stopChild(child, STOP_GRACE_MS)) };
}

async function ensurePythonVenv(): Promise<string> {
  const result = await runEnsureScript(ensureScript, ENSURE_TIMEOUT_MS);
  if (result.exitCode === 0) {
    const python = result.stdout.trimEnd().split('\n').at(-1) ?? '';
    if (python !== '') return python;
    throw new PythonPeerError(`${ensureScript} succeeded but printed no python path`);
  }
  const details = `${ensureScript} exited with ${String(result.exitCode)}:\n${tail(result.stderr)}`;
  if (result.exitCode === ENSURE_UNAVAILABLE_EXIT_CODE || result.exitCode === 'ENOENT') {
    if (process.env.CI === 'true') {
      throw new PythonPeerError(`CI=true requires the Python interop peer, but this machine cannot provide it. ${details}`);
    }
    throw new PythonPeerUnavailableError(`Python interop peer unavailable (install python3 with its venv module). ${details}`);
  }
  throw new PythonPeerError(`Could not prepare the Python interop peer venv. ${details}`);
}


interface StderrTail {
  text(): string;
}

function collectTail(child: ChildProcessWithoutNullStreams): StderrTail {
  let collected = '';
  child.stderr.setEncoding('utf8');
  // Always drained, so a chatty peer can never block on a full pipe.
  child.stderr.on('data', (chunk: string) => {
    collected = tail(collected + chunk);
  });
  return { text: () => collected };
}

function waitForListening(child: ChildProcessWithoutNullStreams, stderr: StderrTail): Promise<number> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const fail = (reason: string, cause?: unknown): void => {
      cleanup();
      child.kill('SIGKILL');
      const message = `Python interop peer did not start: ${reason}\n--- peer stderr (tail) ---\n${stderr.text()}`;
      reject(new PythonPeerError(message, { cause }));
    };
    const onLine = (line: string): void => {
      const match = /^LISTENING (\d+)$/.exec(line.trim());
      if (match?.[1] === undefined) return;
      cleanup();
      // Keep draining stdout for the peer's lifetime.
      lines.on('line', () => undefined);
      resolve(Number(match[1]));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      cleanup();
      // 'close' fires once stderr is drained, so the tail is complete.
      child.once('close', () => fail(`it exited (code ${String(code)}, signal ${String(signal)}) before printing LISTENING`));
    };
    const onError = (error: Error): void => fail(`spawning it failed: ${error.message}`, error);
    const timer = setTimeout(() => fail(`no LISTENING line within ${LISTENING_TIMEOUT_MS} ms`), LISTENING_TIMEOUT_MS);
    function cleanup(): void {
      clearTimeout(timer);
      lines.off('line', onLine);
      child.off('exit', onExit);
      child.off('error', onError);
    }
    lines.on('line', onLine);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

function tail(text: string): string {
  return text.length > STDERR_TAIL_CHARS ? text.slice(-STDERR_TAIL_CHARS) : text;
}

/** Runs `fn` at most once; later calls share its promise. */
function runOnce(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}

/** The peer of one test file, started by usePythonPeer(). */
export interface PythonPeerFixture {
  /** The running peer, or undefined when it could not start outside CI. */
  current(): PythonPeer | undefined;
  /** The running peer; skips the calling test, with the reason, when there is none. */
  orSkip(ctx: TestContext): PythonPeer;
}

/**
 * Starts the peer before the file's tests and stops it after. Outside CI a
 * machine that cannot provide it skips those tests with a printed reason;
 * with CI=true startPythonPeer() throws and the file fails.
 */
export function usePythonPeer(suite: string): PythonPeerFixture {
  let peer: PythonPeer | undefined;
  let unavailableReason: string | undefined;
  beforeAll(async () => {
    try {
      peer = await startPythonPeer();
    } catch (error) {
      if (!(error instanceof PythonPeerUnavailableError)) throw error;
      unavailableReason = error.message;
      console.warn(`Skipping the ${suite} tests: ${unavailableReason}`);
    }
  }, INSTALL_TIMEOUT_MS);
  afterAll(async () => {
    await peer?.stop();
  });
  return {
    current: () => peer,
    orSkip: (ctx) => {
      if (peer === undefined) return ctx.skip(unavailableReason ?? 'the Python peer did not start');
      return peer;
    },
  };
}
