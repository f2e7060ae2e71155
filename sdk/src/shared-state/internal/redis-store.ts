import type * as RedisModule from 'redis';
import { IsotraceError, SharedStateConflictError, SharedStateUnavailableError } from '../../errors/errors.js';
import { loadPeer } from '../../tracing/internal/load-module.js';
import type { RedisStoreClient, RedisStoreOptions, SharedStateScope, SharedStateStore, WorkerStoreRecipe } from '../types.js';
import { COMPARE_AND_SET, DELETE_AND_UNINDEX, LIVE_MEMBERS, SET_AND_INDEX, type RedisScript } from './redis-scripts.js';
import { checkTtlMs } from './ttl.js';

const DEFAULT_KEY_PREFIX = 'isotrace:ss';
const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
// Longer than a call's deadline on purpose: a connect attempt abandoned early
// (e.g. while the event loop is busy) only delays recovery.
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const MAX_UPDATE_ATTEMPTS = 50;
const MAX_RECONNECT_DELAY_MS = 1000;
// Index members read per round trip of keys().
const SSCAN_COUNT = '1000';
// Marks the index key of a scope; '#' never occurs in an encoded key, so no value key can equal it.
const INDEX_SUFFIX = '#keys';

/**
 * A SharedState store in Redis, shared by every process that points at the
 * same server: the store to use when a service runs more than one process or
 * its workers should share state directly.
 *
 * Each value is one Redis string at `<keyPrefix>:<tenant>:<user>:<key>`,
 * every component escaped so that it contains no `:` and no glob character:
 * no tenant id, user id or key can name another scope's key. Each scope also
 * has an index, a Redis set at `<keyPrefix>:<tenant>:<user>:#keys` that the
 * write scripts keep in step, so `keys()` costs what the scope holds however
 * many keys other tenants have (it lists the keys RedisStore wrote; keys put
 * into Redis some other way are not listed). `update` is an optimistic
 * compare-and-set (a Lua script) retried on conflict, so it is atomic across
 * processes; in one process updates of a key queue behind each other instead
 * of competing. TTLs are Redis `PX` expiries; `update` keeps the current TTL
 * unless it is given a new one. Needs Redis 6.0 or newer, not in cluster mode
 * (a value and its scope's index are written by one script).
 *
 * Every call settles within `commandTimeoutMs`: when Redis is down,
 * unreachable or hangs it rejects with SharedStateUnavailableError (the
 * `cause` says why) instead of waiting, and the client reconnects in the
 * background with backoff, so calls succeed again once Redis is back. The
 * connection opens on first use; `close()` closes it. Options that are not
 * valid throw a TypeError naming the option.
 *
 * ```ts
 * import { startTracing } from 'isotrace';
 * import { RedisStore } from 'isotrace/shared-state';
 *
 * const store = new RedisStore({ url: process.env.REDIS_URL });
 * const tracing = await startTracing({ serviceName: 'agent-api', sharedStateStore: store });
 * // … at shutdown:
 * await tracing.shutdown();
 * await store.close();
 * ```
 */
export class RedisStore implements SharedStateStore {
  readonly #client: RedisStoreClient;
  readonly #ownsClient: boolean;
  readonly #keyPrefix: string;
  readonly #commandTimeoutMs: number;
  readonly #endpoint: string;
  readonly #recipe: WorkerStoreRecipe | undefined;
  // Updates waiting for their key's running batch, per Redis key; a key is
  // in #updating while a batch of it runs (both dropped when drained).
  readonly #pendingUpdates = new Map<string, PendingUpdate[]>();
  readonly #updating = new Set<string>();
  #connectStarted = false;
  // Set from the client's last 'error' until it is 'ready' again: while set, calls fail at once.
  #lastConnectionError: unknown;
  // What calls wait on while the client connects: settles on its next 'ready' or 'error'.
  #nextConnectOutcome: Deferred | undefined;
  #closing: Promise<void> | undefined;

  readonly #onError = (error?: unknown): void => {
    // node-redis emits an error per failed (re)connect attempt. Listening is
    // what keeps it from crashing the process; the latest is the cause callers see.
    this.#lastConnectionError = error ?? new Error('connection error');
    this.#nextConnectOutcome?.reject(this.#lastConnectionError);
    this.#nextConnectOutcome = undefined;
  };
  readonly #onReady = (): void => {
    this.#lastConnectionError = undefined;
    this.#nextConnectOutcome?.resolve();
    this.#nextConnectOutcome = undefined;
  };

  constructor(options: RedisStoreOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError(`RedisStore options must be an object; got ${describe(options)}.`);
    const { url, client, keyPrefix = DEFAULT_KEY_PREFIX, commandTimeoutMs = DEFAULT_COMMAND_TIMEOUT_MS } = options;
    const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    validateOptions({ url, client, keyPrefix, commandTimeoutMs, connectTimeoutMs });
    this.#keyPrefix = keyPrefix;
    this.#commandTimeoutMs = commandTimeoutMs;
    this.#ownsClient = client === undefined;
    this.#client = client ?? createOwnClient(url, connectTimeoutMs);
    this.#endpoint = client === undefined ? `Redis at ${endpointOf(url)}` : 'Redis (the client passed to RedisStore)';
    const workerOptions: RedisStoreOptions = { ...(url === undefined ? {} : { url }), keyPrefix, commandTimeoutMs, connectTimeoutMs };
    this.#recipe = client === undefined ? { module: import.meta.url, factory: 'openRedisStore', options: workerOptions } : undefined;
    this.#client.on('error', this.#onError);
    this.#client.on('ready', this.#onReady);
  }

  /** Worker threads open their own connection with these options (not for a client passed in: it cannot cross threads). */
  workerRecipe(): WorkerStoreRecipe | undefined {
    return this.#recipe;
  }

  /** The JSON text under `key` in `scope`, or undefined. Rejects with SharedStateUnavailableError. */
  async get(scope: SharedStateScope, key: string): Promise<string | undefined> {
    return this.#run('get', async (signal) => textOrUndefined(await this.#send(['GET', this.#target(scope, key).redisKey], signal)));
  }

  /**
   * Stores `json` under `key`, with a TTL when `ttlMs` is given (else none).
   * Rejects with SharedStateValueError for a `ttlMs` Redis cannot hold, and
   * with SharedStateUnavailableError.
   */
  async set(scope: SharedStateScope, key: string, json: string, ttlMs?: number): Promise<void> {
    const px = pxOf(checkTtlMs(ttlMs));
    const target = this.#target(scope, key);
    await this.#run('set', (signal) => this.#eval(SET_AND_INDEX, [target.redisKey, target.indexKey], [json, px, target.member, target.scopePrefix], signal));
  }

  /**
   * Atomically replaces the value under `key` with `fn(current)`; keeps the
   * key's TTL unless `ttlMs` is given. `fn` may run more than once (after a
   * concurrent write by another process); its errors reject the call as they
   * are. Rejects with SharedStateConflictError (nothing written) when the
   * key kept changing under other processes' writes for MAX_UPDATE_ATTEMPTS
   * attempts, SharedStateValueError for a `ttlMs` Redis cannot hold, and
   * SharedStateUnavailableError when Redis is unavailable.
   */
  async update(scope: SharedStateScope, key: string, fn: (current: string | undefined) => string, ttlMs?: number): Promise<string> {
    const px = pxOf(checkTtlMs(ttlMs));
    const target = this.#target(scope, key);
    return this.#run('update', (signal) => new Promise<string>((resolve, reject) => this.#enqueueUpdate(target, { fn, px, signal, resolve, reject })));
  }

  /** Removes `key`; resolves true when it existed. Rejects with SharedStateUnavailableError. */
  async delete(scope: SharedStateScope, key: string): Promise<boolean> {
    const target = this.#target(scope, key);
    return this.#run('delete', async (signal) => Number(await this.#eval(DELETE_AND_UNINDEX, [target.redisKey, target.indexKey], [target.member], signal)) > 0);
  }

  /**
   * The live keys of `scope` (and only of it), decoded, read from the scope's
   * index: a round trip per 1,000 keys of the scope, whatever else Redis
   * holds. Drops index entries whose value expired. Rejects with
   * SharedStateUnavailableError.
   */
  async keys(scope: SharedStateScope): Promise<string[]> {
    const scopePrefix = this.#scopePrefix(scope);
    const indexKey = scopePrefix + INDEX_SUFFIX;
    return this.#run('keys', async (signal) => {
      const found = new Set<string>();
      let cursor = '0';
      do {
        const [next, batch] = (await this.#send(['SSCAN', indexKey, cursor, 'COUNT', SSCAN_COUNT], signal)) as [unknown, unknown[]];
        cursor = text(next);
        const members = batch.map(text);
        if (members.length === 0) continue;
        const live = (await this.#eval(LIVE_MEMBERS, [indexKey, ...members.map((member) => scopePrefix + member)], members, signal)) as unknown[];
        for (const member of live) {
          const key = decodeComponent(text(member));
          if (key !== undefined) found.add(key);
        }
      } while (cursor !== '0');
      return [...found];
    });
  }

  /**
   * Closes the connection RedisStore created (waiting up to `commandTimeoutMs`
   * for calls in flight, then dropping it); a client passed in `client` is
   * left open for its owner. Later calls reject with
   * SharedStateUnavailableError. Safe to call more than once.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (!this.#ownsClient) {
      this.#client.off('error', this.#onError);
      this.#client.off('ready', this.#onReady);
      return;
    }
    if (!this.#client.isOpen) return;
    if (!this.#client.isReady) {
      this.#client.destroy();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#commandTimeoutMs);
    });
    const closed = this.#client.close().then(
      () => 'closed' as const,
      () => 'failed' as const,
    );
    const outcome = await Promise.race([closed, timedOut]);
    clearTimeout(timer);
    if (outcome !== 'closed') this.#client.destroy();
  }

  /** Runs one store call against the deadline; maps every Redis or connection failure to SharedStateUnavailableError. */
  async #run<T>(operation: string, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#closing) throw new SharedStateUnavailableError(`SharedState ${operation} failed: this RedisStore is closed.`);
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const timeout = new Error(`no answer within ${this.#commandTimeoutMs} ms`, { cause: this.#lastConnectionError });
        controller.abort(timeout);
        reject(timeout);
      }, this.#commandTimeoutMs);
    });
    try {
      return await Promise.race([this.#whenConnected().then(() => body(controller.signal)), deadline]);
    } catch (error) {
      if (error instanceof UpdateFunctionError) throw error.error;
      // Ours already say what happened (unavailable, conflict): only Redis and connection errors are mapped.
      if (error instanceof IsotraceError) throw error;
      throw this.#unavailable(operation, error);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Resolves once the client is ready (connecting it on first use); rejects
   * at once while it is known to be unable to connect, and on the next
   * failed attempt while it connects.
   */
  async #whenConnected(): Promise<void> {
    if (this.#client.isReady) return;
    if (!this.#connectStarted) {
      this.#connectStarted = true;
      // Failures also arrive as 'error' events, which is where they are handled.
      if (!this.#client.isOpen) this.#client.connect().catch(() => undefined);
    }
    if (this.#lastConnectionError !== undefined) throw this.#lastConnectionError;
    this.#nextConnectOutcome ??= deferred();
    await this.#nextConnectOutcome.promise;
  }

  #send(args: readonly string[], signal: AbortSignal): Promise<unknown> {
    signal.throwIfAborted();
    return this.#client.sendCommand(args, { abortSignal: signal });
  }

  /**
   * Queues an update of `redisKey`. Updates of one key in this process run
   * in batches, one batch at a time: a batch applies its functions in call
   * order to the value it read and writes the result with one compare-and-set,
   * as if they had run one after another. Competing only with other
   * processes, 1,000 concurrent updates take a few round trips, not 2,000.
   */
  #enqueueUpdate(target: Target, update: PendingUpdate): void {
    const { redisKey } = target;
    const queue = this.#pendingUpdates.get(redisKey);
    if (queue) queue.push(update);
    else this.#pendingUpdates.set(redisKey, [update]);
    if (!this.#updating.has(redisKey)) void this.#drainUpdates(target);
  }

  async #drainUpdates(target: Target): Promise<void> {
    const { redisKey } = target;
    this.#updating.add(redisKey);
    try {
      for (;;) {
        // Calls that timed out while waiting were already rejected: they must not write.
        const batch = (this.#pendingUpdates.get(redisKey) ?? []).filter((update) => !update.signal.aborted);
        this.#pendingUpdates.delete(redisKey);
        if (batch.length === 0) return;
        try {
          await this.#compareAndSetLoop(target, batch);
        } catch (error) {
          for (const update of batch) update.reject(error);
        }
      }
    } finally {
      this.#updating.delete(redisKey);
    }
  }

  /** Settles every update of `batch` that it writes or whose function throws; throws for the rest. */
  async #compareAndSetLoop(target: Target, batch: PendingUpdate[]): Promise<void> {
    // The last call has the latest deadline: the batch's commands run until then.
    const signal = batch.at(-1)!.signal;
    const { redisKey, indexKey, member, scopePrefix } = target;
    let current = textOrUndefined(await this.#send(['GET', redisKey], signal));
    let live = batch;
    for (let attempt = 1; attempt <= MAX_UPDATE_ATTEMPTS; attempt++) {
      const run = applyBatch(live.filter((update) => !update.signal.aborted), current);
      if (run.applied.length === 0) return;
      live = run.applied.map(({ update }) => update);
      const expected = current === undefined ? ['0', ''] : ['1', current];
      const reply = (await this.#eval(COMPARE_AND_SET, [redisKey, indexKey], [...expected, run.value, run.px, member, scopePrefix], signal)) as unknown[];
      if (Number(reply[0]) === 1) {
        for (const { update, value } of run.applied) update.resolve(value);
        return;
      }
      current = textOrUndefined(reply[1]);
      // Another process wrote in between: back off a little so the writers spread out.
      await backoff(attempt, signal);
    }
    throw new SharedStateConflictError(
      `SharedState update gave up after ${MAX_UPDATE_ATTEMPTS} attempts: the key kept changing under concurrent writers from other processes; nothing was written. ` +
        'Retry later, or spread the writes over more keys.',
    );
  }

  /** Runs `script` by its SHA, sending its source once when the server does not have it (yet, or after a restart). */
  async #eval(script: RedisScript, keys: readonly string[], args: readonly string[], signal: AbortSignal): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.#send(['EVALSHA', script.sha, ...tail], signal);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.#send(['EVAL', script.source, ...tail], signal);
    }
  }

  #unavailable(operation: string, cause: unknown): SharedStateUnavailableError {
    const reason = cause instanceof Error ? cause.message : String(cause);
    return new SharedStateUnavailableError(
      `SharedState ${operation} failed: ${this.#endpoint} is unavailable (${reason}). ` +
        'Check that Redis is running and reachable; RedisStore reconnects on its own once it is back.',
      { cause },
    );
  }

  #scopePrefix(scope: SharedStateScope): string {
    return `${this.#keyPrefix}:${encodeComponent(scope.tenantId)}:${encodeComponent(scope.userId)}:`;
  }

  #target(scope: SharedStateScope, key: string): Target {
    const scopePrefix = this.#scopePrefix(scope);
    const member = encodeComponent(key);
    return { redisKey: scopePrefix + member, indexKey: scopePrefix + INDEX_SUFFIX, member, scopePrefix };
  }
}

/** The Redis keys of one SharedState key: its value, its scope's index, and its entry in that index. */
interface Target {
  readonly redisKey: string;
  readonly indexKey: string;
  /** The encoded key: redisKey is scopePrefix + member. */
  readonly member: string;
  readonly scopePrefix: string;
}

/** An update() call waiting for its key's batch. */
interface PendingUpdate {
  readonly fn: (current: string | undefined) => string;
  /** PX in ms, or '' to keep the key's TTL. */
  readonly px: string;
  readonly signal: AbortSignal;
  resolve(json: string): void;
  reject(error: unknown): void;
}

/** Carries an error thrown by the caller's update function past the Redis error mapping. */
class UpdateFunctionError {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

interface BatchRun {
  /** The value after the last function, what the batch writes. */
  readonly value: string;
  /** The TTL of the write: the last one given, else '' (keep). */
  readonly px: string;
  readonly applied: { update: PendingUpdate; value: string }[];
}

/**
 * Applies the functions of `batch` in order, starting from `current`. A
 * function that throws rejects its own call (now: a later attempt must not
 * run it again) and leaves the value as it was for the next one.
 */
function applyBatch(batch: PendingUpdate[], current: string | undefined): BatchRun {
  const applied: BatchRun['applied'] = [];
  let value = current;
  let px = '';
  for (const update of batch) {
    try {
      value = update.fn(value);
    } catch (error) {
      update.reject(new UpdateFunctionError(error));
      continue;
    }
    if (update.px !== '') px = update.px;
    applied.push({ update, value });
  }
  return { value: value ?? '', px, applied };
}

function createOwnClient(url: string | undefined, connectTimeoutMs: number): RedisStoreClient {
  // `redis` is an optional peer dependency: only a RedisStore that makes its own client needs it.
  const { createClient } = loadPeer<typeof RedisModule>('redis', 'RedisStore (without a `client` option)');
  return createClient({
    ...(url === undefined ? {} : { url }),
    // Reject commands while reconnecting instead of queueing them until Redis is back.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: connectTimeoutMs,
      // Exponential backoff with jitter, never giving up: the store recovers when Redis is back.
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 10), MAX_RECONNECT_DELAY_MS) + Math.floor(Math.random() * 50),
    },
  });
}

function validateOptions(options: { url: unknown; client: unknown; keyPrefix: unknown; commandTimeoutMs: unknown; connectTimeoutMs: unknown }): void {
  const { url, client, keyPrefix, commandTimeoutMs, connectTimeoutMs } = options;
  if (url !== undefined && client !== undefined) throw new TypeError('RedisStore options url and client are exclusive: pass one of them.');
  if (url !== undefined && !isRedisUrl(url)) throw new TypeError(`RedisStore option url must be a redis:// or rediss:// URL; got ${describe(url)}.`);
  if (client !== undefined && !isClient(client)) throw new TypeError(`RedisStore option client must be a node-redis client (createClient() from 'redis'); got ${describe(client)}.`);
  if (typeof keyPrefix !== 'string' || keyPrefix.length === 0) throw new TypeError(`RedisStore option keyPrefix must be a non-empty string; got ${describe(keyPrefix)}.`);
  for (const [name, value] of [['commandTimeoutMs', commandTimeoutMs], ['connectTimeoutMs', connectTimeoutMs]] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new TypeError(`RedisStore option ${name} must be a positive number of ms; got ${describe(value)}.`);
  }
}

function isRedisUrl(url: unknown): url is string {
  if (typeof url !== 'string') return false;
  try {
    return ['redis:', 'rediss:'].includes(new URL(url).protocol);
  } catch {
    return false;
  }
}

function isClient(client: unknown): client is RedisStoreClient {
  if (client === null || typeof client !== 'object') return false;
  const methods = client as Record<string, unknown>;
  return ['connect', 'sendCommand', 'on', 'off', 'close', 'destroy'].every((name) => typeof methods[name] === 'function');
}

/** host:port of a Redis URL, without credentials (error messages end up in logs). */
function endpointOf(url: string | undefined): string {
  if (url === undefined) return 'localhost:6379';
  const { hostname, port } = new URL(url);
  return `${hostname || 'localhost'}:${port || '6379'}`;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'number') return String(value);
  return value === null ? 'null' : typeof value;
}

// Characters kept as they are in key components; everything else becomes %XXXX
// (its UTF-16 code unit in hex). Unlike encodeURIComponent this is total (lone
// surrogates too, which UTF-8 would turn into U+FFFD and make two keys collide)
// and leaves no ':' (the component separator) and no glob character.
const PLAIN = /[A-Za-z0-9._~-]/;
const ENCODED = /^(?:[A-Za-z0-9._~-]|%[0-9A-F]{4})+$/;

/** Escapes one key component; injective, and the result contains only [A-Za-z0-9._~%-]. */
export function encodeComponent(component: string): string {
  let encoded = '';
  for (let i = 0; i < component.length; i++) {
    const char = component[i]!;
    encoded += PLAIN.test(char) ? char : `%${component.charCodeAt(i).toString(16).toUpperCase().padStart(4, '0')}`;
  }
  return encoded;
}

/** The component `encodeComponent` produced `encoded` from, or undefined when `encoded` is not such an output. */
export function decodeComponent(encoded: string): string | undefined {
  if (!ENCODED.test(encoded)) return undefined;
  const decoded = encoded.replace(/%([0-9A-F]{4})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  // Only the canonical form counts (e.g. not '%0041' for 'A'): keys written by something else are not ours.
  return encodeComponent(decoded) === encoded ? decoded : undefined;
}

/** PX of a checked TTL (whole ms, rounded up), or '' for none. */
function pxOf(ttlMs: number | undefined): string {
  return ttlMs === undefined ? '' : String(Math.max(1, Math.ceil(ttlMs)));
}

function text(reply: unknown): string {
  return Buffer.isBuffer(reply) ? reply.toString('utf8') : String(reply);
}

function textOrUndefined(reply: unknown): string | undefined {
  return reply === null || reply === undefined ? undefined : text(reply);
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Settled by client events, possibly after every waiting call timed out.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

function backoff(attempt: number, signal: AbortSignal): Promise<void> {
  const ms = Math.random() * Math.min(2 ** attempt, 50);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Opens a RedisStore in a worker thread, from the recipe of the submitting thread's store (RedisStore.workerRecipe()). */
export function openRedisStore(options: RedisStoreOptions): RedisStore {
  return new RedisStore(options);
}
