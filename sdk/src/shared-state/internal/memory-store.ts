import type { MemoryStoreOptions, SharedStateScope, SharedStateStore } from '../types.js';
import { checkTtlMs } from './ttl.js';

interface Entry {
  json: string;
  expiresAt: number;
}

/**
 * The embedded SharedState store: process memory, nested maps per tenant and
 * user, so no key string can reach another scope. Updates are atomic because
 * they run synchronously on the owning thread, so they never conflict.
 */
export class MemoryStore implements SharedStateStore {
  readonly #tenants = new Map<string, Map<string, Map<string, Entry>>>();
  readonly #sweepIntervalMs: number;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    const { sweepIntervalMs = 30_000 } = options;
    if (!Number.isFinite(sweepIntervalMs) || sweepIntervalMs <= 0) {
      throw new TypeError(`MemoryStore option sweepIntervalMs must be a positive number of ms; got ${String(sweepIntervalMs)}.`);
    }
    this.#sweepIntervalMs = sweepIntervalMs;
  }

  async get(scope: SharedStateScope, key: string): Promise<string | undefined> {
    return this.#live(scope, key)?.json;
  }

  async set(scope: SharedStateScope, key: string, json: string, ttlMs?: number): Promise<void> {
    this.#write(scope, key, json, ttlMs, undefined);
  }

  async update(scope: SharedStateScope, key: string, fn: (current: string | undefined) => string, ttlMs?: number): Promise<string> {
    const current = this.#live(scope, key);
    const json = fn(current?.json);
    this.#write(scope, key, json, ttlMs, current?.expiresAt);
    return json;
  }

  async delete(scope: SharedStateScope, key: string): Promise<boolean> {
    const live = this.#live(scope, key) !== undefined;
    this.#entries(scope, false)?.delete(key);
    return live;
  }

  async keys(scope: SharedStateScope): Promise<string[]> {
    const entries = this.#entries(scope, false);
    if (!entries) return [];
    const now = Date.now();
    return [...entries].filter(([, entry]) => entry.expiresAt > now).map(([key]) => key);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#tenants.clear();
  }

  #write(scope: SharedStateScope, key: string, json: string, ttlMs: number | undefined, keepExpiry: number | undefined): void {
    checkTtlMs(ttlMs);
    const expiresAt = ttlMs === undefined ? (keepExpiry ?? Infinity) : Date.now() + ttlMs;
    if (expiresAt !== Infinity) this.#startSweeper();
    this.#entries(scope, true).set(key, { json, expiresAt });
  }

  #live(scope: SharedStateScope, key: string): Entry | undefined {
    const entries = this.#entries(scope, false);
    const entry = entries?.get(key);
    if (entry && entry.expiresAt <= Date.now()) {
      entries?.delete(key);
      return undefined;
    }
    return entry;
  }

  #entries(scope: SharedStateScope, create: true): Map<string, Entry>;
  #entries(scope: SharedStateScope, create: false): Map<string, Entry> | undefined;
  #entries(scope: SharedStateScope, create: boolean): Map<string, Entry> | undefined {
    let users = this.#tenants.get(scope.tenantId);
    if (!users) {
      if (!create) return undefined;
      users = new Map();
      this.#tenants.set(scope.tenantId, users);
    }
    let entries = users.get(scope.userId);
    if (!entries && create) {
      entries = new Map();
      users.set(scope.userId, entries);
    }
    return entries;
  }

  #startSweeper(): void {
    if (this.#sweeper) return;
    this.#sweeper = setInterval(() => this.#sweep(), this.#sweepIntervalMs);
    this.#sweeper.unref();
  }

  #sweep(): void {
    const now = Date.now();
    for (const [tenantId, users] of this.#tenants) {
      for (const [userId, entries] of users) {
        for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key);
        if (entries.size === 0) users.delete(userId);
      }
      if (users.size === 0) this.#tenants.delete(tenantId);
    }
  }
}
