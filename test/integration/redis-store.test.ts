/**
 * RedisStore against a real redis-server of this file: atomic updates across
 * two processes, what callers see when Redis goes down, hangs and comes
 * back, when other writers win every race, and keys() among millions of
 * other tenants' keys. No timing assertions: a call must settle (vitest's test timeout is the
 * bound for "does not hang"), and it must settle with the right error.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SpanStatusCode } from '@opentelemetry/api';
import { createClient } from 'redis';
import { getSharedState, SharedStateConflictError, SharedStateUnavailableError, withRequestContext, type SharedState } from 'isotrace';
import { RedisStore, type RedisStoreClient } from 'isotrace/shared-state';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { closedPort } from '../helpers/net.js';
import { createRandom, deferred, delay, testSeed } from '../helpers/random.js';

const fixture = fileURLToPath(new URL('../fixtures/redis-increments.mjs', import.meta.url));
const CHILD_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 50;
const POLL_BOUND_MS = 20_000;
// For the store that is never reachable; the assertions never depend on it.
const COMMAND_TIMEOUT_MS = 500;

const keyPrefix = `isotrace-test:${randomUUID()}`;
let redis: TestRedis;
let kit: TestTracing;
let store: RedisStore;

beforeAll(async () => {
  redis = await startRedis();
  // Default timeouts: what users get. A hung Redis costs the freeze test one commandTimeoutMs.
  store = new RedisStore({ url: redis.url, keyPrefix });
  kit = await setupTestTracing({ sharedStateStore: store });
  // Connect and load the update script now, so the first test does not pay for it.
  await asUser('warm-up', 'u', (state) => state.update<number>('n', (n) => (n ?? 0) + 1));
});

afterAll(async () => {
  await kit?.shutdown();
  await store?.close();
  await redis?.stop();
});

function asUser<T>(tenantId: string, userId: string, fn: (state: SharedState) => Promise<T>): Promise<T> {
  return withRequestContext({ tenantId, userId }, () => fn(getSharedState()));
}

describe('RedisStore across processes', () => {
  it('ends at exactly 1,000 after 1,000 concurrent increments from 1,000 requests in 2 processes', async () => {
    const tenant = `tenant-${randomUUID()}`;
    const child = startFixture({ REDIS_URL: redis.url, KEY_PREFIX: keyPrefix, TENANT_ID: tenant, USER_ID: 'u', KEY: 'count', COUNT: '500' });
    try {
      await child.ready;
      child.go();
      const random = createRandom(testSeed());
      const ours = await Promise.all(
        Array.from({ length: 500 }, async () => {
          // Spread like the child's, so the two processes' writes interleave many times.
          await delay(random.int(0, 19));
          return asUser(tenant, 'u', (state) => state.update<number>('count', (n) => (n ?? 0) + 1));
        }),
      );
      const theirs = await child.result;
      expect(await asUser(tenant, 'u', (state) => state.get('count'))).toBe(1000);
      // Atomic: each increment saw a different value, whichever process made it.
      expect([...ours, ...theirs].sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
      // Both processes really took part.
      expect(ours).toHaveLength(500);
      expect(theirs).toHaveLength(500);
    } finally {
      child.kill();
    }
  });
});

describe('RedisStore when Redis is unavailable', () => {
  it('rejects every operation with SharedStateUnavailableError when Redis is down, then recovers when it is back', async () => {
    const tenant = `tenant-${randomUUID()}`;
    await asUser(tenant, 'u', (state) => state.set('k', 'before'));
    await redis.stop();
    try {
      const calls: [string, (state: SharedState) => Promise<unknown>][] = [
        ['get', (state) => state.get('k')],
        ['set', (state) => state.set('k', 'during')],
        ['update', (state) => state.update<number>('n', (n) => (n ?? 0) + 1)],
        ['delete', (state) => state.delete('k')],
        ['keys', (state) => state.keys()],
      ];
      for (const [operation, call] of calls) {
        const error = await asUser(tenant, 'u', call).then(
          () => undefined,
          (rejection: unknown) => rejection,
        );
        expect(error, operation).toBeInstanceOf(SharedStateUnavailableError);
        expect((error as Error).message, operation).toContain(`SharedState ${operation} failed`);
        expect((error as Error).cause, operation).toBeDefined();
      }
      // Many at once: all settle, all with the same clear error.
      const settled = await Promise.allSettled(Array.from({ length: 200 }, () => asUser(tenant, 'u', (state) => state.get('k'))));
      expect(settled.every((result) => result.status === 'rejected' && result.reason instanceof SharedStateUnavailableError)).toBe(true);
    } finally {
      await redis.restart();
    }
    // Back: calls succeed again (this server keeps no data across restarts).
    await pollUntilOk(() => asUser(tenant, 'u', (state) => state.set('k', 'after')));
    expect(await asUser(tenant, 'u', (state) => state.get('k'))).toBe('after');
  });

  it('settles every call when Redis dies mid-run: each succeeds or rejects with SharedStateUnavailableError', async () => {
    const random = createRandom(testSeed());
    const tenant = `tenant-${randomUUID()}`;
    const stopped = deferred();
    let completed = 0;
    const increment = (userId: string): Promise<unknown> =>
      asUser(tenant, userId, async (state) => {
        await state.update<number>('count', (n) => (n ?? 0) + 1);
        return state.get('count');
      });
    // Redis dies once 50 calls are done, with the others in flight or still to start.
    const early = Array.from({ length: 250 }, async (_, i) => {
      await delay(random.int(0, 40));
      try {
        return await increment(`u${i % 7}`);
      } finally {
        if (++completed === 50) void redis.stop().then(() => stopped.resolve());
      }
    });
    const late = Array.from({ length: 50 }, async (_, i) => {
      await stopped.promise;
      return increment(`u${i % 7}`);
    });
    const [earlyResults, lateResults] = await Promise.all([Promise.allSettled(early), Promise.allSettled(late)]);
    await redis.restart();
    const failures = [...earlyResults, ...lateResults].filter((result) => result.status === 'rejected').map((result) => result.reason as unknown);
    expect(failures.filter((error) => !(error instanceof SharedStateUnavailableError)), `seed ${random.seed}`).toEqual([]);
    expect(earlyResults.filter((result) => result.status === 'fulfilled').length).toBeGreaterThanOrEqual(1);
    expect(lateResults.every((result) => result.status === 'rejected')).toBe(true);
    await pollUntilOk(() => asUser(tenant, 'u0', (state) => state.set('alive', true)));
  });

  it('rejects with SharedStateUnavailableError instead of hanging when Redis stops answering, and recovers when it answers again', async () => {
    const tenant = `tenant-${randomUUID()}`;
    await asUser(tenant, 'u', (state) => state.set('n', 1));
    redis.freeze();
    let results: PromiseSettledResult<unknown>[];
    try {
      results = await Promise.allSettled([
        asUser(tenant, 'u', (state) => state.get('n')),
        asUser(tenant, 'u', (state) => state.update<number>('n', (n) => (n ?? 0) + 1)),
        asUser(tenant, 'u', (state) => state.keys()),
      ]);
    } finally {
      redis.thaw();
    }
    for (const result of results) {
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(SharedStateUnavailableError);
      expect(((result as PromiseRejectedResult).reason as Error).message).toMatch(/no answer within/);
    }
    await pollUntilOk(() => asUser(tenant, 'u', (state) => state.get('n')));
    // The update that timed out never wrote, even though Redis answered its read later.
    expect(await asUser(tenant, 'u', (state) => state.get('n'))).toBe(1);
  });

  it('rejects with SharedStateUnavailableError (cause: the connection error) when Redis was never reachable', async () => {
    const port = await closedPort();
    const unreachable = new RedisStore({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: COMMAND_TIMEOUT_MS });
    try {
      const scope = { tenantId: 't', userId: 'u' };
      for (let i = 0; i < 3; i++) {
        const error = await unreachable.get(scope, 'k').then(
          () => undefined,
          (rejection: unknown) => rejection,
        );
        expect(error).toBeInstanceOf(SharedStateUnavailableError);
        expect((error as Error).message).toContain(`127.0.0.1:${port}`);
      }
    } finally {
      await unreachable.close();
    }
  });

  it('records the error on the request span when a SharedState call fails the request', async () => {
    const tenant = `tenant-${randomUUID()}`;
    kit.reset();
    await redis.stop();
    try {
      await expect(withRequestContext({ tenantId: tenant, userId: 'u', name: 'needs-state' }, () => getSharedState().get('k'))).rejects.toBeInstanceOf(SharedStateUnavailableError);
    } finally {
      await redis.restart();
    }
    const span = kit.spans().find((candidate) => candidate.name === 'needs-state');
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes['error.type']).toBe('SharedStateUnavailableError');
    expect(span?.events.some((event) => event.name === 'exception')).toBe(true);
    await pollUntilOk(() => asUser(tenant, 'u', (state) => state.get('k')));
  });

  it('records the outage on the active span even when the caller handles the error', async () => {
    const tenant = `tenant-${randomUUID()}`;
    kit.reset();
    await redis.stop();
    let fallback: unknown;
    try {
      fallback = await withRequestContext({ tenantId: tenant, userId: 'u', name: 'tolerates-outage' }, () => getSharedState().get('k').catch(() => 'fallback'));
    } finally {
      await redis.restart();
    }
    expect(fallback).toBe('fallback');
    const span = kit.spans().find((candidate) => candidate.name === 'tolerates-outage');
    expect(span?.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(span?.events.map((event) => event.name)).toEqual(expect.arrayContaining(['exception', 'isotrace.shared_state.unavailable']));
    expect(span?.events.find((event) => event.name === 'isotrace.shared_state.unavailable')?.attributes?.['isotrace.shared_state.operation']).toBe('get');
    await pollUntilOk(() => asUser(tenant, 'u', (state) => state.get('k')));
  });
});

describe('RedisStore options', () => {
  it('rejects invalid options with a TypeError naming the option', () => {
    expect(() => new RedisStore({ url: 'http://localhost' })).toThrow(/option url/);
    expect(() => new RedisStore({ keyPrefix: '' })).toThrow(/option keyPrefix/);
    expect(() => new RedisStore({ commandTimeoutMs: 0 })).toThrow(/option commandTimeoutMs/);
    expect(() => new RedisStore({ connectTimeoutMs: Number.NaN })).toThrow(/option connectTimeoutMs/);
    expect(() => new RedisStore({ client: {} as never })).toThrow(/option client/);
    expect(() => new RedisStore({ url: 'redis://localhost', client: {} as never })).toThrow(TypeError);
  });

  it('rejects calls after close() with SharedStateUnavailableError', async () => {
    const closing = new RedisStore({ url: redis.url });
    await closing.set({ tenantId: 't', userId: 'u' }, 'k', '1');
    await closing.close();
    await closing.close();
    await expect(closing.get({ tenantId: 't', userId: 'u' }, 'k')).rejects.toBeInstanceOf(SharedStateUnavailableError);
  });
});

describe('RedisStore under write contention', () => {
  it('rejects an update that loses every race with SharedStateConflictError, not "unavailable", and writes nothing', async () => {
    const raw = createClient({ url: redis.url });
    await raw.connect();
    // Another writer changes the key right before each of the store's compare-and-set scripts runs.
    const interfering = new WriteBeforeEachScript(raw, ':contested');
    const contended = new RedisStore({ client: interfering, keyPrefix, commandTimeoutMs: 60_000 });
    const scope = { tenantId: `tenant-${randomUUID()}`, userId: 'u' };
    try {
      let runs = 0;
      const error = await contended.update(scope, 'contested', (current) => (runs++, JSON.stringify(`mine after ${current}`))).then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      expect(error).toBeInstanceOf(SharedStateConflictError);
      expect(error).not.toBeInstanceOf(SharedStateUnavailableError);
      expect((error as Error).message).toMatch(/kept changing under concurrent writers/);
      expect(runs).toBeGreaterThan(1);
      // Nothing of ours was written: the key holds the other writer's last value.
      expect(await contended.get(scope, 'contested')).toBe(JSON.stringify(`other writer ${interfering.writes}`));
      // Redis is fine: a key nobody else writes updates at once.
      expect(await contended.update(scope, 'quiet', () => '1')).toBe('1');
    } finally {
      await contended.close();
      await raw.close();
    }
  });
});

describe('RedisStore keys() at scale', () => {
  it('lists exactly one tenant’s keys while another tenant has 3,000,000 keys in the same Redis', async () => {
    const crowded = await startRedis();
    const raw = createClient({ url: crowded.url });
    const bigStore = new RedisStore({ url: crowded.url, keyPrefix });
    try {
      await raw.connect();
      await fillWithValueKeys(raw, `${keyPrefix}:other-tenant:u:k`, 3_000_000);
      expect(Number(await raw.sendCommand(['DBSIZE']))).toBeGreaterThanOrEqual(3_000_000);

      const scope = { tenantId: `tenant-${randomUUID()}`, userId: 'u' };
      await bigStore.set(scope, 'a', '1');
      await bigStore.set(scope, 'b', '2', 600_000);
      await bigStore.update(scope, 'c', () => '3');
      // Default commandTimeoutMs (2 s): a keys() that walked the whole keyspace would not make it.
      expect((await bigStore.keys(scope)).sort()).toEqual(['a', 'b', 'c']);
      expect(await bigStore.keys({ tenantId: `tenant-${randomUUID()}`, userId: 'u' })).toEqual([]);
    } finally {
      await bigStore.close();
      if (raw.isOpen) await raw.close();
      await crowded.stop();
    }
    // Writing 3,000,000 keys takes a while on a busy machine; keys() itself has its 2 s deadline.
  }, 240_000);
});

describe('RedisStore key index housekeeping', () => {
  it('leaves nothing of a scope in Redis once all its keys have expired', async () => {
    const tenantId = `tenant-${randomUUID()}`;
    const raw = createClient({ url: redis.url });
    await raw.connect();
    try {
      const left = async (): Promise<string[]> => (await raw.sendCommand(['KEYS', `${keyPrefix}:${tenantId}:*`])) as string[];
      await asUser(tenantId, 'u', async (state) => {
        await state.set('a', 1, { ttlMs: 1000 });
        await state.update<number>('b', (n) => (n ?? 0) + 1, { ttlMs: 1500 });
      });
      // The values and their index are there (on a machine slow enough to let 1 s pass, this fails rather than testing nothing).
      expect((await left()).length).toBe(3);
      await pollUntilOk(async () => {
        const keys = await left();
        if (keys.length > 0) throw new Error(`still in Redis: ${keys.join(', ')}`);
      });
    } finally {
      await raw.close();
    }
  });

  it('keeps the key index of a scope that keeps writing new expiring keys bounded, without any keys() call', async () => {
    const tenantId = `tenant-${randomUUID()}`;
    const rounds = 20;
    const perRound = 50;
    await asUser(tenantId, 'u', async (state) => {
      await state.set('profile', { kept: true });
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < perRound; i++) await state.set(`cache-${round}-${i}`, i, { ttlMs: 5 });
        await pollUntilOk(async () => {
          if ((await state.get(`cache-${round}-${perRound - 1}`)) !== undefined) throw new Error('not expired yet');
        });
      }
    });
    const raw = createClient({ url: redis.url });
    await raw.connect();
    try {
      const indexed = Number(await raw.sendCommand(['SCARD', `${keyPrefix}:${tenantId}:u:#keys`]));
      // 1,001 keys were written, at most 51 were ever live at once; without pruning all 1,001 would stay listed.
      expect(indexed).toBeGreaterThanOrEqual(1);
      expect(indexed).toBeLessThan(400);
    } finally {
      await raw.close();
    }
    expect(await asUser(tenantId, 'u', (state) => state.keys())).toEqual(['profile']);
  });
});

/** Calls `call` until it resolves; fails after a generous bound instead of hanging (no timing assertion). */
async function pollUntilOk(call: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + POLL_BOUND_MS;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      await call();
      return;
    } catch (error) {
      lastError = error;
      await delay(POLL_INTERVAL_MS);
    }
  }
  throw new Error(`still failing after ${POLL_BOUND_MS} ms`, { cause: lastError });
}

interface Fixture {
  readonly ready: Promise<void>;
  readonly result: Promise<number[]>;
  go(): void;
  kill(): void;
}

/** Runs test/fixtures/redis-increments.mjs in a second Node process (this Node, isotrace from sdk/src as in every test process). */
function startFixture(env: Record<string, string>): Fixture {
  const child = spawn(process.execPath, [fixture], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const lines = createInterface({ input: child.stdout });
  const failure = (what: string): Error => new Error(`redis-increments fixture ${what}\n--- stderr ---\n${stderr}`);
  const exited = new Promise<never>((_, reject) => {
    child.once('close', (code, signal) => reject(failure(`exited (code ${String(code)}, signal ${String(signal)})`)));
    child.once('error', (error) => reject(failure(`could not start: ${error.message}`)));
  });
  exited.catch(() => undefined);
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
  const lineStartingWith = (prefix: string): Promise<string> =>
    Promise.race([
      new Promise<string>((resolve) => {
        const onLine = (line: string): void => {
          if (!line.startsWith(prefix)) return;
          lines.off('line', onLine);
          resolve(line.slice(prefix.length));
        };
        lines.on('line', onLine);
      }),
      exited,
    ]);
  const ready = lineStartingWith('READY').then(() => undefined);
  const result = lineStartingWith('RESULT ').then(async (json) => {
    // It must also exit on its own: close() released every handle.
    const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));
    clearTimeout(timer);
    if (code !== 0) throw failure(`exited with ${String(code)}`);
    return JSON.parse(json) as number[];
  });
  // Awaited by the test, unless it failed before: then they must not be unhandled.
  ready.catch(() => undefined);
  result.catch(() => undefined);
  return {
    ready,
    result,
    go: () => child.stdin.end('GO\n'),
    kill: () => {
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Writes `count` string keys `<prefix><n>` quickly: MSETs of 1,000 keys, 50 in flight. */
async function fillWithValueKeys(client: RedisStoreClient, prefix: string, count: number): Promise<void> {
  const inFlight: Promise<unknown>[] = [];
  for (let start = 0; start < count; start += 1000) {
    const args = ['MSET'];
    for (let n = start; n < Math.min(start + 1000, count); n++) args.push(`${prefix}${n}`, '1');
    inFlight.push(client.sendCommand(args));
    if (inFlight.length >= 50) await Promise.all(inFlight.splice(0));
  }
  await Promise.all(inFlight);
}

/**
 * A node-redis client for RedisStore that, before each script whose first key
 * ends with `suffix`, writes that key itself: another process winning every
 * race, deterministically, on the real server.
 */
class WriteBeforeEachScript implements RedisStoreClient {
  writes = 0;
  readonly #inner: RedisStoreClient;
  readonly #suffix: string;

  constructor(inner: RedisStoreClient, suffix: string) {
    this.#inner = inner;
    this.#suffix = suffix;
  }

  get isOpen(): boolean {
    return this.#inner.isOpen;
  }

  get isReady(): boolean {
    return this.#inner.isReady;
  }

  connect(): Promise<unknown> {
    return this.#inner.connect();
  }

  async sendCommand(args: readonly string[], options?: { abortSignal?: AbortSignal }): Promise<unknown> {
    const firstKey = args[3];
    if ((args[0] === 'EVALSHA' || args[0] === 'EVAL') && firstKey?.endsWith(this.#suffix)) {
      await this.#inner.sendCommand(['SET', firstKey, JSON.stringify(`other writer ${++this.writes}`)]);
    }
    return this.#inner.sendCommand(args, options);
  }

  on(event: 'error' | 'ready', listener: (error?: unknown) => void): unknown {
    return this.#inner.on(event, listener);
  }

  off(event: 'error' | 'ready', listener: (error?: unknown) => void): unknown {
    return this.#inner.off(event, listener);
  }

  close(): Promise<unknown> {
    return this.#inner.close();
  }

  destroy(): void {
    this.#inner.destroy();
  }
}
