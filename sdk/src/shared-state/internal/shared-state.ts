import { trace } from '@opentelemetry/api';
import { SharedStateUnavailableError, SharedStateValueError } from '../../errors/errors.js';
import type { JsonValue, SetOptions, SharedState, SharedStateScope, SharedStateStore } from '../types.js';
import { assertKey, fromJson, toJson } from './json.js';
import { checkTtlMs } from './ttl.js';

/** Called before every access; the run-time audit hooks in here. */
export type SharedStateAccessHook = (scope: SharedStateScope, operation: string) => void;

/** A SharedState bound to one (tenant, user) scope of a store. */
export class ScopedSharedState implements SharedState {
  readonly scope: SharedStateScope;
  readonly #store: SharedStateStore;
  readonly #onAccess: SharedStateAccessHook | undefined;

  constructor(store: SharedStateStore, scope: SharedStateScope, onAccess?: SharedStateAccessHook) {
    this.#store = store;
    this.scope = Object.freeze({ tenantId: scope.tenantId, userId: scope.userId });
    this.#onAccess = onAccess;
  }

  async get<T extends JsonValue = JsonValue>(key: string): Promise<T | undefined> {
    this.#enter(key, 'get');
    return fromJson<T>(await recorded('get', this.#store.get(this.scope, key)));
  }

  async set(key: string, value: JsonValue, options?: SetOptions): Promise<void> {
    this.#enter(key, 'set');
    const json = toJson(key, value);
    await recorded('set', this.#store.set(this.scope, key, json, ttlOf(options)));
  }

  async update<T extends JsonValue = JsonValue>(key: string, fn: (current: T | undefined) => T, options?: SetOptions): Promise<T> {
    this.#enter(key, 'update');
    if (typeof fn !== 'function') throw new SharedStateValueError(`SharedState.update('${key}') needs a function that returns the new value.`);
    const json = await recorded('update', this.#store.update(
      this.scope,
      key,
      (current) => {
        const next = fn(fromJson<T>(current));
        if (next instanceof Promise) throw new SharedStateValueError(`SharedState.update('${key}'): the update function must be synchronous (it returned a promise).`);
        return toJson(key, next);
      },
      ttlOf(options),
    ));
    return JSON.parse(json) as T;
  }

  async delete(key: string): Promise<boolean> {
    this.#enter(key, 'delete');
    return recorded('delete', this.#store.delete(this.scope, key));
  }

  async keys(): Promise<string[]> {
    this.#onAccess?.(this.scope, 'keys');
    return recorded('keys', this.#store.keys(this.scope));
  }

  #enter(key: unknown, operation: string): void {
    assertKey(key);
    this.#onAccess?.(this.scope, operation);
  }
}

/**
 * Awaits a store call; when the store is unavailable the active span records
 * it (an exception event naming the operation) even if the caller then
 * handles the error, so the trace shows the outage.
 */
async function recorded<T>(operation: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    if (error instanceof SharedStateUnavailableError) {
      trace.getActiveSpan()?.recordException(error);
      trace.getActiveSpan()?.addEvent('isotrace.shared_state.unavailable', { 'isotrace.shared_state.operation': operation });
    }
    throw error;
  }
}

function ttlOf(options: SetOptions | undefined): number | undefined {
  return checkTtlMs(options?.ttlMs);
}
