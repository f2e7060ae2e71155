/** JSON data: what SharedState stores. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Whose state a key belongs to. Stores keep scopes apart structurally, never by string concatenation. */
export interface SharedStateScope {
  readonly tenantId: string;
  readonly userId: string;
}

/** Options of a write. */
export interface SetOptions {
  /** Time to live in milliseconds (positive, at most Number.MAX_SAFE_INTEGER); the key disappears after it. */
  ttlMs?: number;
}

/**
 * The per-(tenant, user) state of the current request, the seeds'
 * `self._shared_state`. Every method returns a promise and rejects (never
 * throws) on bad input or an unavailable store.
 */
export interface SharedState {
  readonly scope: SharedStateScope;
  /** The value under `key`, or undefined. Returns a copy: mutate it and `set` it back. */
  get<T extends JsonValue = JsonValue>(key: string): Promise<T | undefined>;
  /**
   * Stores a JSON value. The value is read once (getters run once) and what
   * was read is what is stored; it rejects with SharedStateValueError, naming
   * the path, for anything that is not plain JSON data or that JSON would
   * store differently (functions, `toJSON` methods, class instances, BigInt,
   * NaN, holes in arrays, more than 1,000 levels of nesting, …), and for a
   * `ttlMs` that is not a positive number of ms up to Number.MAX_SAFE_INTEGER.
   * (`-0` is stored as `0`, as JSON does.)
   */
  set(key: string, value: JsonValue, options?: SetOptions): Promise<void>;
  /**
   * Atomically replaces the value with `fn(current)`. `fn` must be synchronous
   * and may run more than once on stores that retry (keep it pure).
   * Resolves to the stored value. Its result is checked like `set`'s value.
   * Rejects with SharedStateConflictError, writing nothing, when other writers
   * (other processes on RedisStore, worker threads) kept changing the key
   * through every retry; with SharedStateUnavailableError only when the store
   * cannot be reached.
   */
  update<T extends JsonValue = JsonValue>(key: string, fn: (current: T | undefined) => T, options?: SetOptions): Promise<T>;
  /** Removes `key`; resolves true when it existed. */
  delete(key: string): Promise<boolean>;
  /** The live keys of this scope. */
  keys(): Promise<string[]>;
}

/**
 * Where SharedState lives. Implementations receive validated keys and values
 * already serialized as JSON text, and must keep scopes apart whatever the
 * key string contains. Errors of an unreachable backend are
 * SharedStateUnavailableError; an `update` that keeps losing to concurrent
 * writers rejects with SharedStateConflictError. `keys` costs what the scope
 * holds, never what the whole store holds.
 */
export interface SharedStateStore {
  get(scope: SharedStateScope, key: string): Promise<string | undefined>;
  set(scope: SharedStateScope, key: string, json: string, ttlMs?: number): Promise<void>;
  /** Applies `fn` to the current JSON text atomically and stores its result; resolves to the stored text. */
  update(scope: SharedStateScope, key: string, fn: (current: string | undefined) => string, ttlMs?: number): Promise<string>;
  delete(scope: SharedStateScope, key: string): Promise<boolean>;
  keys(scope: SharedStateScope): Promise<string[]>;
  /** Releases connections and timers. */
  close?(): Promise<void>;
  /**
   * How a worker thread can open this same store itself (structured-clone
   * data), read once by startTracing(). Stores without one (MemoryStore, a
   * RedisStore given its own client) are reached through the thread that owns
   * them, over a message channel.
   */
  workerRecipe?(): WorkerStoreRecipe | undefined;
}

/**
 * What a worker thread needs to open a store of its own on the same backend:
 * the worker imports `module` and calls its export `factory` with `options`.
 * Any store can offer one, RedisStore does:
 *
 * ```ts
 * // my-store.ts
 * export class MyStore implements SharedStateStore {
 *   constructor(readonly options: { url: string }) {}
 *   workerRecipe(): WorkerStoreRecipe {
 *     return { module: import.meta.url, factory: 'openMyStore', options: this.options };
 *   }
 *   // get, set, update, delete, keys …
 * }
 * export function openMyStore(options: { url: string }): MyStore {
 *   return new MyStore(options);
 * }
 * ```
 */
export interface WorkerStoreRecipe {
  /**
   * The module the worker imports: a `file:` URL (the store module's own
   * `import.meta.url`), or a package name resolvable from isotrace's location.
   */
  module: string;
  /** Its export that opens the store: a function given `options`, returning a SharedStateStore or a promise of one. */
  factory: string;
  /** Structured-clone data for the factory (a URL, a key prefix, timeouts; never a client or a function). */
  options?: unknown;
}

/** Options of MemoryStore. */
export interface MemoryStoreOptions {
  /** How often expired keys are swept, in ms (they are also dropped when read). Default 30 s. */
  sweepIntervalMs?: number;
}

/**
 * The part of a node-redis client (`createClient()` from `redis`) that
 * RedisStore uses. Any node-redis v5+ client fits; RedisStore sends raw
 * commands, so client modules, scripts and type mappings do not matter.
 */
export interface RedisStoreClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  sendCommand(args: readonly string[], options?: { abortSignal?: AbortSignal }): Promise<unknown>;
  on(event: 'error' | 'ready', listener: (error?: unknown) => void): unknown;
  off(event: 'error' | 'ready', listener: (error?: unknown) => void): unknown;
  close(): Promise<unknown>;
  destroy(): void;
}

/** Options of RedisStore. */
export interface RedisStoreOptions {
  /** `redis[s]://[[user][:password]@]host[:port][/db]`; default node-redis's `redis://localhost:6379`. Not with `client`. */
  url?: string;
  /**
   * An existing node-redis client to use instead of creating one. RedisStore
   * connects it on first use if it is not open, listens to its `error` event
   * (so a connection error never crashes the process) and never closes it:
   * its owner does. Create it with `disableOfflineQueue: true` so calls fail
   * at once while it reconnects (otherwise they fail at `commandTimeoutMs`).
   */
  client?: RedisStoreClient;
  /** First component of every Redis key; default `isotrace:ss`. */
  keyPrefix?: string;
  /** Bound on every store call (connecting, queueing, retries included), in ms; default 2000. */
  commandTimeoutMs?: number;
  /**
   * Bound on one connect attempt of the client RedisStore creates, in ms;
   * default 5000. Calls never wait longer than `commandTimeoutMs` for it.
   */
  connectTimeoutMs?: number;
}
