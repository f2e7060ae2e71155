// Load generation and server processes for the HTTP scenarios: autocannon as a
// library, and child processes that speak a small IPC protocol (see http-server.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface LoadOptions {
  url: string;
  connections: number;
  /** Seconds. */
  duration: number;
  /** Requests per second over all connections; default as fast as the server answers. */
  overallRate?: number;
}

export interface LoadResult {
  /** Mean requests per second over the run. */
  requestsPerSecond: number;
  /** Responses received. */
  total: number;
  latencyP50: number;
  latencyP99: number;
  /** Connection errors, timeouts and non-2xx answers. */
  errors: number;
}

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}

// autocannon ships no types: this is the part of its API the benchmarks use.
const autocannon = createRequire(import.meta.url)('autocannon') as (options: Record<string, unknown>) => Promise<AutocannonResult>;

/** Runs autocannon against `url` and returns the figures the reports use. */
export async function load(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({ url: options.url, connections: options.connections, duration: options.duration, overallRate: options.overallRate, timeout: 30 });
  return {
    requestsPerSecond: result.requests.average,
    total: result.requests.total,
    latencyP50: result.latency.p50,
    latencyP99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

/** A child process that answers IPC messages (one outstanding request at a time). */
export class Child {
  readonly #process: ChildProcess;
  readonly #exited: Promise<void>;

  private constructor(child: ChildProcess) {
    this.#process = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** Starts `script` (relative to bench/lib) with Node and waits for its first message. */
  static async start<T>(script: string, args: readonly string[]): Promise<{ child: Child; first: T }> {
    const path = fileURLToPath(new URL(script, import.meta.url));
    const child = new Child(spawn(process.execPath, ['--expose-gc', path, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const first = await child.#next<T>();
    return { child, first };
  }

  /** Sends `message` and resolves with the child's answer. */
  ask<T>(message: string): Promise<T> {
    const answer = this.#next<T>();
    this.#process.send(message);
    return answer;
  }

  /** Asks the child to shut down and waits for it to exit (killing it after `graceMs`). */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.#process.exitCode === null && this.#process.connected) this.#process.disconnect();
    const timer = setTimeout(() => this.#process.kill('SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(timer);
  }

  #next<T>(): Promise<T> {
    return new Promise((resolve, reject) => {
      const onMessage = (message: unknown): void => {
        this.#process.off('exit', onExit);
        resolve(message as T);
      };
      const onExit = (code: number | null): void => {
        this.#process.off('message', onMessage);
        reject(new Error(`child process exited (${code}) before answering`));
      };
      this.#process.once('message', onMessage);
      this.#process.once('exit', onExit);
    });
  }
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
