/**
 * The SharedState store contract: what every SharedStateStore must do, seen
 * through the public API (withRequestContext + getSharedState) the way users
 * see it. store-contract.test.ts runs it against each store.
 *
 * Each suite starts isotrace with its store in beforeAll and shuts it down in
 * afterAll, so suites of one file run one after another, never at once.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomUUID } from 'node:crypto';
import { getSharedState, SharedStateValueError, withRequestContext, type JsonValue, type SharedState } from 'isotrace';
import type { SharedStateStore } from 'isotrace/shared-state';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createRandom, delay, testSeed } from '../../helpers/random.js';

/** Keys that try to escape their scope or break an encoding. */
export const HOSTILE_KEYS: readonly string[] = [
  '*',
  '?',
  '[a]',
  ':',
  '%3A',
  '%',
  '%0041',
  'A',
  '../x',
  '\\',
  '\\*',
  'a:b:c',
  ' ',
  '\n',
  'ключ',
  '🔑',
  'e\u0301',
  '\uD800',
  'x'.repeat(1000),
];

/** Scopes whose ids carry glob characters and separators, including pairs that collide when joined with ':'. */
export const HOSTILE_SCOPES: readonly { tenantId: string; userId: string }[] = [
  { tenantId: 't*', userId: 'u' },
  { tenantId: 't', userId: 'u' },
  { tenantId: 't:1', userId: 'u' },
  { tenantId: 't', userId: '1:u' },
  { tenantId: 't:1:u', userId: 'u' },
  { tenantId: 't', userId: 'u*' },
  { tenantId: '*', userId: '*' },
  { tenantId: 't%3A1', userId: 'u' },
  { tenantId: 't?', userId: '[u]' },
];

const POLL_INTERVAL_MS = 10;
const POLL_BOUND_MS = 15_000;

/**
 * Defines a vitest suite `SharedState contract: <name>` that runs the
 * contract against the store `makeStore` returns (a fresh one, with no keys;
 * closed after the suite).
 */
export function sharedStateContract(name: string, makeStore: () => SharedStateStore | Promise<SharedStateStore>): void {
  describe(`SharedState contract: ${name}`, () => {
    let store: SharedStateStore | undefined;
    let kit: TestTracing | undefined;

    beforeAll(async () => {
      store = await makeStore();
      kit = await setupTestTracing({ sharedStateStore: store });
    });

    afterAll(async () => {
      await kit?.shutdown();
      await store?.close?.();
    });

    it('round-trips every kind of JSON value through set and get', async () => {
      const values: JsonValue[] = [null, true, false, 0, -1.5, 1e300, 'text', '', 'ünïcødé 🔑', [], [1, 'two', null], {}, { nested: { list: [{ a: 1 }] } }];
      await asUser(uniqueTenant(), 'u', async (state) => {
        for (const [index, value] of values.entries()) await state.set(`k${index}`, value);
        for (const [index, value] of values.entries()) expect(await state.get(`k${index}`)).toEqual(value);
      });
    });

    it('returns undefined for a missing key and overwrites on set', async () => {
      await asUser(uniqueTenant(), 'u', async (state) => {
        expect(await state.get('missing')).toBeUndefined();
        await state.set('k', 1);
        await state.set('k', 'two');
        expect(await state.get('k')).toBe('two');
      });
    });

    it('deletes, resolving whether the key existed, and lists exactly the live keys', async () => {
      await asUser(uniqueTenant(), 'u', async (state) => {
        expect(await state.keys()).toEqual([]);
        await state.set('a', 1);
        await state.set('b', 2);
        expect(sorted(await state.keys())).toEqual(['a', 'b']);
        expect(await state.delete('a')).toBe(true);
        expect(await state.delete('a')).toBe(false);
        expect(await state.get('a')).toBeUndefined();
        expect(await state.keys()).toEqual(['b']);
      });
    });

    it('is shared by later requests of the same tenant and user', async () => {
      const tenant = uniqueTenant();
      await asUser(tenant, 'u', (state) => state.set('greeting', { text: 'hi' }));
      expect(await asUser(tenant, 'u', (state) => state.get('greeting'))).toEqual({ text: 'hi' });
    });

    it('returns copies: mutating what was set or what get/update returned does not change the store', async () => {
      await asUser(uniqueTenant(), 'u', async (state) => {
        const original = { list: [1], inner: { n: 1 } };
        await state.set('obj', original);
        original.list.push(2);
        original.inner.n = 2;
        const read = await state.get<{ list: number[]; inner: { n: number } }>('obj');
        read!.list.push(3);
        const updated = await state.update<{ list: number[]; inner: { n: number } }>('obj', (current) => ({ ...current!, inner: { n: 5 } }));
        updated.list.push(4);
        expect(await state.get('obj')).toEqual({ list: [1], inner: { n: 5 } });
      });
    });

    it('update resolves to the stored value, starts from undefined, and keeps the value when fn throws', async () => {
      await asUser(uniqueTenant(), 'u', async (state) => {
        expect(await state.update<number>('n', (current) => (current ?? 10) + 1)).toBe(11);
        expect(await state.update<number>('n', (current) => (current ?? 10) + 1)).toBe(12);
        const failure = new Error('boom');
        await expect(
          state.update<number>('n', () => {
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect(await state.get('n')).toBe(12);
      });
    });

    it('drops a value set with a TTL once it has passed, from get and keys, and keeps the others', async () => {
      await asUser(uniqueTenant(), 'u', async (state) => {
        await state.set('short', 'soon gone', { ttlMs: 30 });
        await state.set('long', 'stays', { ttlMs: 600_000 });
        await state.set('forever', 'stays');
        await eventually(async () => (await state.get('short')) === undefined, 'a key with a 30 ms TTL to expire');
        expect(await state.keys()).not.toContain('short');
        expect(await state.get('long')).toBe('stays');
        expect(await state.get('forever')).toBe('stays');
        expect(sorted(await state.keys())).toEqual(['forever', 'long']);
      });
    });

    it('update keeps the TTL of the key it changes when given none', async () => {
      await asUser(uniqueTenant(), 'u', async (state) => {
        // The key must still exist when update runs, or there is no TTL to keep:
        // on a machine so slow that it expired first, try again with a longer TTL.
        for (const ttlMs of [300, 3000, 10_000]) {
          await state.set('counter', 1, { ttlMs });
          const after = await state.update<number>('counter', (current) => (current === undefined ? -1 : current + 1));
          if (after === -1) continue;
          expect(after).toBe(2);
          await eventually(async () => (await state.get('counter')) === undefined, 'the updated key to expire with its original TTL');
          return;
        }
        throw new Error('the key expired before update could run, even with a 10 s TTL');
      });
    });

    it('update with a TTL gives the key that TTL; set without one removes it', async () => {
      await asUser(uniqueTenant(), 'u', async (state) => {
        await state.set('updated', 1);
        await state.update<number>('updated', (current) => (current ?? 0) + 1, { ttlMs: 30 });
        await eventually(async () => (await state.get('updated')) === undefined, 'a key updated with a 30 ms TTL to expire');

        await state.set('reset', 'first', { ttlMs: 30 });
        await state.set('reset', 'second');
        // A key with the same TTL written after it is the clock: once it is gone,
        // 'reset' would be gone too had it kept its TTL.
        await state.set('clock', 'tick', { ttlMs: 30 });
        await eventually(async () => (await state.get('clock')) === undefined, 'the clock key to expire');
        expect(await state.get('reset')).toBe('second');
      });
    });

    it('keeps tenants and users apart with hostile keys and ids, under concurrent requests', async () => {
      const random = createRandom(testSeed());
      const tag = (scope: { tenantId: string; userId: string }, key: string): JsonValue => ({ ...scope, key });
      // Every scope writes every hostile key, all at once and interleaved.
      const writes = HOSTILE_SCOPES.flatMap((scope) => HOSTILE_KEYS.map((key) => ({ scope, key })));
      await Promise.all(
        random.shuffle(writes).map(async ({ scope, key }) => {
          await delay(random.int(0, 5));
          await asUser(scope.tenantId, scope.userId, (state) => state.set(key, tag(scope, key)));
        }),
      );
      const reads = await Promise.all(
        random.shuffle([...HOSTILE_SCOPES]).map(async (scope) => {
          await delay(random.int(0, 5));
          return asUser(scope.tenantId, scope.userId, async (state) => {
            expect(state.scope).toEqual(scope);
            const keys = await state.keys();
            const values = await Promise.all(HOSTILE_KEYS.map((key) => state.get(key)));
            return { scope, keys, values };
          });
        }),
      );
      for (const { scope, keys, values } of reads) {
        expect(sorted(keys), `keys of ${JSON.stringify(scope)} (seed ${random.seed})`).toEqual(sorted(HOSTILE_KEYS));
        expect(values, `values of ${JSON.stringify(scope)} (seed ${random.seed})`).toEqual(HOSTILE_KEYS.map((key) => tag(scope, key)));
      }

      // Deleting in one scope leaves the look-alike scopes untouched.
      const [first, ...others] = HOSTILE_SCOPES;
      await asUser(first!.tenantId, first!.userId, async (state) => {
        for (const key of HOSTILE_KEYS) expect(await state.delete(key)).toBe(true);
        expect(await state.keys()).toEqual([]);
      });
      for (const scope of others) {
        expect(await asUser(scope.tenantId, scope.userId, (state) => state.keys().then(sorted))).toEqual(sorted(HOSTILE_KEYS));
      }
    });

    it('a tenant never sees another tenant’s value under the same key and user', async () => {
      const random = createRandom(testSeed());
      const tenants = Array.from({ length: 50 }, (_, i) => `${uniqueTenant()}-${i}`);
      const seen = await Promise.all(
        random.shuffle(tenants).map(async (tenant) => {
          await delay(random.int(0, 5));
          return asUser(tenant, 'same-user', async (state) => {
            await state.set('secret', tenant);
            await delay(random.int(0, 5));
            return { tenant, secret: await state.get('secret'), keys: await state.keys() };
          });
        }),
      );
      for (const { tenant, secret, keys } of seen) {
        expect(secret, `seed ${random.seed}`).toBe(tenant);
        expect(keys).toEqual(['secret']);
      }
    });

    it('ends at exactly 1,000 after 1,000 concurrent updates from 1,000 concurrent requests of one tenant', async () => {
      const random = createRandom(testSeed());
      const tenant = uniqueTenant();
      const results = await Promise.all(
        Array.from({ length: 1000 }, async () => {
          await delay(random.int(0, 3));
          return asUser(tenant, 'u', (state) => state.update<number>('count', (current) => (current ?? 0) + 1));
        }),
      );
      expect(await asUser(tenant, 'u', (state) => state.get('count'))).toBe(1000);
      // Atomic: every update saw a different value, so each result appears once.
      expect(sorted(results.map(String))).toEqual(sorted(Array.from({ length: 1000 }, (_, i) => String(i + 1))));
    });

    it('reads a value once and stores what it read: a getter that changes between reads cannot slip anything past the check', async () => {
      await asUser(uniqueTenant(), 'u', async (state) => {
        // Valid on the first read; a function (dropped by JSON) or a BigInt (a TypeError in JSON.stringify) after.
        for (const later of [() => 'sneaky', 10n]) {
          let reads = 0;
          const value = {
            get n(): unknown {
              reads++;
              return reads === 1 ? 1 : later;
            },
          };
          await state.set('flip', value as unknown as JsonValue);
          expect(await state.get('flip')).toEqual({ n: 1 });
          expect(reads).toBe(1);

          reads = 0;
          expect(await state.update('flip-update', () => value as unknown as JsonValue)).toEqual({ n: 1 });
          expect(await state.get('flip-update')).toEqual({ n: 1 });
          expect(reads).toBe(1);
        }
      });
    });

    it('rejects values JSON would store differently (toJSON, BigInt, holes, named array properties, symbol keys) with SharedStateValueError naming the path, and stores nothing', async () => {
      class Items extends Array<number> {}
      const cases: [string, unknown, string][] = [
        ['an array whose toJSON returns undefined', Object.assign([1], { toJSON: () => undefined }), "'v.toJSON'"],
        ['an array whose toJSON returns a BigInt', Object.assign([1], { toJSON: () => 10n }), "'v.toJSON'"],
        ['an object whose toJSON returns undefined', { a: 1, toJSON: () => undefined }, "'v.toJSON'"],
        ['a nested object with toJSON', { inner: { toJSON: () => 'replaced' } }, "'v.inner.toJSON'"],
        ['a top-level BigInt', 10n, "'v'"],
        ['a BigInt in an array', [1, 2n], "'v[1]'"],
        ['a hole in an array', [1, , 3], "'v[1]'"],
        ['a named property of an array', Object.assign([1], { note: 'dropped by JSON' }), "'v.note'"],
        ['a symbol-keyed property', { a: 1, [Symbol('hidden')]: 2 }, "'v[Symbol(hidden)]'"],
        ['an Array subclass instance', Items.from([1, 2]), "'v'"],
      ];
      await asUser(uniqueTenant(), 'u', async (state) => {
        for (const [what, value, path] of cases) {
          const set = state.set('v', value as JsonValue);
          await expect(set, what).rejects.toBeInstanceOf(SharedStateValueError);
          await expect(set, what).rejects.toThrow(path);
          await expect(state.update('v', () => value as JsonValue), what).rejects.toBeInstanceOf(SharedStateValueError);
          expect(await state.get('v'), what).toBeUndefined();
        }
        expect(await state.keys()).toEqual([]);
      });
    });

    it('keeps plain data that only looks special: a __proto__ key, a non-function toJSON, 1,000 levels of nesting', async () => {
      let deep: JsonValue = 'bottom';
      for (let level = 1; level < 1000; level++) deep = [deep];
      let tooDeep: JsonValue = deep;
      for (let level = 0; level < 10; level++) tooDeep = [tooDeep];
      await asUser(uniqueTenant(), 'u', async (state) => {
        const withProto = JSON.parse('{"__proto__":{"admin":true},"toJSON":1}') as JsonValue;
        await state.set('proto', withProto);
        const read = (await state.get<Record<string, JsonValue>>('proto'))!;
        expect(Object.getOwnPropertyNames(read).sort()).toEqual(['__proto__', 'toJSON']);
        expect(Object.getPrototypeOf(read)).toBe(Object.prototype);
        expect(({} as Record<string, unknown>).admin).toBeUndefined();

        await state.set('deep', deep);
        expect(await state.get('deep')).toEqual(deep);
        await expect(state.set('too-deep', tooDeep)).rejects.toBeInstanceOf(SharedStateValueError);
      });
    });

    it('rejects a ttlMs the store cannot hold with SharedStateValueError naming ttlMs (never "unavailable"), and accepts the largest one', async () => {
      await asUser(uniqueTenant(), 'u', async (state) => {
        for (const ttlMs of [1e300, 2 ** 63, Number.MAX_SAFE_INTEGER + 2, Number.MAX_VALUE, -1, 0, Number.NaN]) {
          const set = state.set('k', 1, { ttlMs });
          await expect(set, `set ttlMs ${ttlMs}`).rejects.toBeInstanceOf(SharedStateValueError);
          await expect(set, `set ttlMs ${ttlMs}`).rejects.toThrow(/ttlMs/);
          const update = state.update('k', () => 1, { ttlMs });
          await expect(update, `update ttlMs ${ttlMs}`).rejects.toBeInstanceOf(SharedStateValueError);
          await expect(update, `update ttlMs ${ttlMs}`).rejects.toThrow(/ttlMs/);
        }
        expect(await state.get('k')).toBeUndefined();
        await state.set('max', 'kept', { ttlMs: Number.MAX_SAFE_INTEGER });
        expect(await state.update<string>('max', (value) => `${value} again`, { ttlMs: Number.MAX_SAFE_INTEGER })).toBe('kept again');
        expect(await state.get('max')).toBe('kept again');
        expect(await state.keys()).toEqual(['max']);
      });
    });

    it('keys() stays exact as keys expire and come back, and after update and delete', async () => {
      await asUser(uniqueTenant(), 'u', async (state) => {
        await state.set('comes-back', 1, { ttlMs: 30 });
        await state.set('stays', 1);
        await eventually(async () => !(await state.keys()).includes('comes-back'), 'the expired key to leave keys()');
        await state.set('comes-back', 2);
        await state.update<number>('created-by-update', (current) => (current ?? 0) + 1);
        expect(sorted(await state.keys())).toEqual(['comes-back', 'created-by-update', 'stays']);
        await state.delete('stays');
        await state.delete('never-existed');
        expect(sorted(await state.keys())).toEqual(['comes-back', 'created-by-update']);
        await state.update<number>('comes-back', (current) => (current ?? 0) + 1, { ttlMs: 30 });
        await eventually(async () => (await state.keys()).length === 1, 'the key updated with a TTL to leave keys()');
        expect(await state.keys()).toEqual(['created-by-update']);
      });
    });
  });
}

/** Runs `fn` with the SharedState of a request for (tenantId, userId). */
function asUser<T>(tenantId: string, userId: string, fn: (state: SharedState) => Promise<T>): Promise<T> {
  return withRequestContext({ tenantId, userId }, () => fn(getSharedState()));
}

function uniqueTenant(): string {
  return `tenant-${randomUUID()}`;
}

function sorted<T>(items: readonly T[]): T[] {
  return [...items].sort();
}

/** Polls `check` until it holds; fails after a generous bound instead of hanging (no timing assertion). */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + POLL_BOUND_MS;
  while (Date.now() < deadline) {
    if (await check()) return;
    await delay(POLL_INTERVAL_MS);
  }
  throw new Error(`gave up waiting ${POLL_BOUND_MS} ms for ${what}`);
}
