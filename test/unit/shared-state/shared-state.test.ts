import { describe, it, expect } from 'vitest';
import { getSharedState, RequestContextMissingError, SharedStateValueError, withRequestContext, type JsonValue, type SharedState } from 'isotrace';
import { SharedStateValueError as SharedStateValueErrorFromSubpath } from 'isotrace/shared-state';
import { createRandom, delay, testSeed } from '../../helpers/random.js';
import { useTestTracing } from 'isotrace/testing';

useTestTracing();

/** Runs `fn` with the SharedState of a request for (tenantId, userId). */
function asUser<T>(tenantId: string, userId: string, fn: (state: SharedState) => Promise<T>): Promise<T> {
  return withRequestContext({ tenantId, userId }, () => fn(getSharedState()));
}

/** Polls until `read` returns undefined; fails after a generous bound instead of hanging. */
async function eventuallyUndefined(read: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    if ((await read()) === undefined) return;
    await delay(10);
  }
  throw new Error('value never expired');
}

describe('SharedState access', () => {
  it('getSharedState() and ctx.sharedState are the same tenant/user scope', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, async (ctx) => {
      expect(getSharedState().scope).toEqual({ tenantId: 't1', userId: 'u1' });
      await getSharedState().set('via-get', 1);
      expect(await ctx.sharedState.get('via-get')).toBe(1);
    });
  });

  it('getSharedState() throws RequestContextMissingError outside a request', () => {
    expect(() => getSharedState()).toThrow(RequestContextMissingError);
    expect(() => getSharedState()).toThrow(/withRequestContext/);
  });

  it('is shared by later requests of the same tenant and user', async () => {
    await asUser('t-persist', 'u1', (state) => state.set('greeting', { text: 'hi' }));
    expect(await asUser('t-persist', 'u1', (state) => state.get('greeting'))).toEqual({ text: 'hi' });
  });
});

describe('SharedState get/set/update/delete/keys', () => {
  it('stores and returns every kind of JSON value', async () => {
    const values: JsonValue[] = [null, true, false, 0, -1.5, 'text', '', [], [1, 'two', null], {}, { nested: { list: [{ a: 1 }] } }];
    await asUser('t-json', 'u1', async (state) => {
      for (const [index, value] of values.entries()) {
        await state.set(`k${index}`, value);
        expect(await state.get(`k${index}`)).toEqual(value);
      }
    });
  });

  it('returns undefined for a missing key', async () => {
    expect(await asUser('t-missing', 'u1', (state) => state.get('nope'))).toBeUndefined();
  });

  it('overwrites on set, updates from the current value, and resolves update to the stored value', async () => {
    await asUser('t-update', 'u1', async (state) => {
      await state.set('n', 1);
      await state.set('n', 2);
      expect(await state.update<number>('n', (current) => (current ?? 0) * 10)).toBe(20);
      expect(await state.update<number>('fresh', (current) => (current === undefined ? 1 : -1))).toBe(1);
      expect(await state.get('n')).toBe(20);
    });
  });

  it('deletes, resolving whether the key existed', async () => {
    await asUser('t-delete', 'u1', async (state) => {
      await state.set('gone', 'soon');
      expect(await state.delete('gone')).toBe(true);
      expect(await state.get('gone')).toBeUndefined();
      expect(await state.delete('gone')).toBe(false);
    });
  });

  it('lists the live keys of the scope', async () => {
    await asUser('t-keys', 'u1', async (state) => {
      expect(await state.keys()).toEqual([]);
      await state.set('a', 1);
      await state.set('b', 2);
      await state.update('c', () => 3);
      await state.delete('b');
      expect((await state.keys()).sort()).toEqual(['a', 'c']);
    });
  });

  it('returns copies: mutating what get returned, or what was set, does not change the store', async () => {
    await asUser('t-copies', 'u1', async (state) => {
      const original = { list: [1, 2], inner: { x: 1 } };
      await state.set('obj', original);
      original.list.push(99);
      original.inner.x = 99;

      const got = await state.get<{ list: number[]; inner: { x: number } }>('obj');
      got!.list.push(3);
      got!.inner.x = 2;
      expect(await state.get('obj')).toEqual({ list: [1, 2], inner: { x: 1 } });

      const updated = await state.update<{ list: number[] }>('obj2', () => ({ list: [1] }));
      updated.list.push(2);
      expect(await state.get('obj2')).toEqual({ list: [1] });
    });
  });
});

describe('SharedState TTL', () => {
  it('keeps a value within its TTL', async () => {
    await asUser('t-ttl', 'u1', async (state) => {
      await state.set('long', 'here', { ttlMs: 60_000 });
      expect(await state.get('long')).toBe('here');
      expect(await state.keys()).toContain('long');
    });
  });

  it('drops a value set with a TTL once it has passed (get and keys)', async () => {
    await asUser('t-ttl', 'u2', async (state) => {
      await state.set('short', 'brief', { ttlMs: 20 });
      await state.set('stays', 'put');
      await eventuallyUndefined(() => state.get('short'));
      expect(await state.keys()).toEqual(['stays']);
    });
  });

  it('drops a value written by update with a TTL', async () => {
    await asUser('t-ttl', 'u3', async (state) => {
      await state.update<number>('counter', (n) => (n ?? 0) + 1, { ttlMs: 20 });
      await eventuallyUndefined(() => state.get('counter'));
    });
  });

  it.each([0, -5, Number.NaN, Number.POSITIVE_INFINITY])('rejects ttlMs %s with SharedStateValueError', async (ttlMs) => {
    await asUser('t-ttl', 'u4', async (state) => {
      await expect(state.set('k', 1, { ttlMs })).rejects.toThrow(SharedStateValueError);
      expect(await state.get('k')).toBeUndefined();
    });
  });
});

describe('SharedState values must be JSON data', () => {
  class Money {
    constructor(readonly cents: number) {}
  }
  const circular: Record<string, unknown> = { name: 'loop' };
  circular.self = circular;

  const notJson: Array<[string, unknown, string]> = [
    ['a function', { nested: { fn: () => 1 } }, 'cart.nested.fn'],
    ['undefined', { nested: { missing: undefined } }, 'cart.nested.missing'],
    ['NaN', { nested: [1, Number.NaN] }, 'cart.nested[1]'],
    ['Infinity', { total: Number.POSITIVE_INFINITY }, 'cart.total'],
    ['a Date', { at: new Date(0) }, 'cart.at'],
    ['a Map', { index: new Map([['a', 1]]) }, 'cart.index'],
    ['a class instance', { price: new Money(5) }, 'cart.price'],
    ['a BigInt', { big: 10n }, 'cart.big'],
    ['a circular reference', circular, 'cart.self'],
    ['a top-level undefined', undefined, 'cart'],
    ['a Symbol', { s: Symbol('s') }, 'cart.s'],
  ];

  it.each(notJson)('set rejects %s with SharedStateValueError naming the path and stores nothing', async (_what, value, path) => {
    await asUser('t-values', 'u1', async (state) => {
      const outcome = state.set('cart', value as JsonValue);
      await expect(outcome).rejects.toThrow(SharedStateValueError);
      await expect(outcome).rejects.toThrow(`'${path}'`);
      expect(await state.get('cart')).toBeUndefined();
    });
  });

  it('update rejects a non-JSON result and keeps the old value', async () => {
    await asUser('t-values', 'u2', async (state) => {
      await state.set('cart', { items: 1 });
      await expect(state.update('cart', () => ({ at: new Date() }) as unknown as JsonValue)).rejects.toThrow(SharedStateValueError);
      expect(await state.get('cart')).toEqual({ items: 1 });
    });
  });

  it('update rejects an async update function and keeps the old value', async () => {
    await asUser('t-values', 'u3', async (state) => {
      await state.set('n', 1);
      const asyncFn = (async (n: number | undefined) => (n ?? 0) + 1) as unknown as (n: number | undefined) => number;
      const outcome = state.update<number>('n', asyncFn);
      await expect(outcome).rejects.toThrow(SharedStateValueError);
      await expect(outcome).rejects.toThrow(/synchronous/);
      expect(await state.get('n')).toBe(1);
    });
  });

  it('update rejects a missing update function', async () => {
    await asUser('t-values', 'u4', async (state) => {
      await expect(state.update('n', 'nope' as unknown as () => number)).rejects.toThrow(SharedStateValueError);
    });
  });

  it('is one error class for isotrace and isotrace/shared-state', () => {
    expect(SharedStateValueErrorFromSubpath).toBe(SharedStateValueError);
  });
});

describe('SharedState keys', () => {
  const badKeys: Array<[string, unknown]> = [
    ['empty', ''],
    ['a number', 42],
    ['undefined', undefined],
    ['an object', { key: 'x' }],
    ['longer than 1024 characters', 'k'.repeat(1025)],
  ];

  it.each(badKeys)('rejects a key that is %s in get, set, update and delete', async (_what, key) => {
    await asUser('t-keys-bad', 'u1', async (state) => {
      const k = key as string;
      await expect(state.get(k)).rejects.toThrow(SharedStateValueError);
      await expect(state.set(k, 1)).rejects.toThrow(SharedStateValueError);
      await expect(state.update(k, () => 1)).rejects.toThrow(SharedStateValueError);
      await expect(state.delete(k)).rejects.toThrow(SharedStateValueError);
      expect(await state.keys()).toEqual([]);
    });
  });

  it('accepts a key of exactly 1024 characters', async () => {
    await asUser('t-keys-bad', 'u2', async (state) => {
      const key = 'k'.repeat(1024);
      await state.set(key, 'ok');
      expect(await state.get(key)).toBe('ok');
    });
  });
});

describe('SharedState tenant isolation', () => {
  const trickyKeys = ['x', '../iso-b/x', 'iso-b:x', 'iso-b/ua/x', 'ua:x', '../../iso-a/ub/x', '\u0000', 'x\u0000t2', '__proto__', 'constructor', 'toString', '*', '{t2}:x'];

  it('keeps tenant A’s keys invisible to tenant B and to another user of A, whatever the key string', async () => {
    const owner = { tenantId: 'iso-a', userId: 'ua' };
    const secretOf = (key: string): string => `secret of iso-a/ua under ${JSON.stringify(key)}`;
    await asUser(owner.tenantId, owner.userId, async (state) => {
      for (const key of trickyKeys) await state.set(key, secretOf(key));
      for (const key of trickyKeys) expect(await state.get(key)).toBe(secretOf(key));
      expect((await state.keys()).sort()).toEqual([...trickyKeys].sort());
    });

    const others = [['iso-b', 'ua'], ['iso-a', 'ub'], ['iso-b', 'x'], ['iso-a:ua', 'x'], ['iso-a', 'ua:x'], ['iso-a/ua', 'x']] as const;
    for (const [tenantId, userId] of others) {
      await asUser(tenantId, userId, async (state) => {
        expect(await state.keys(), `keys of ${tenantId}/${userId}`).toEqual([]);
        for (const key of trickyKeys) expect(await state.get(key), `${tenantId}/${userId} reading ${JSON.stringify(key)}`).toBeUndefined();
        // Deleting and overwriting in another scope leaves A untouched.
        for (const key of trickyKeys) expect(await state.delete(key)).toBe(false);
        await state.set('x', 'other scope');
        await state.update('__proto__', () => 'other scope');
      });
    }

    await asUser(owner.tenantId, owner.userId, async (state) => {
      for (const key of trickyKeys) expect(await state.get(key)).toBe(secretOf(key));
      expect((await state.keys()).sort()).toEqual([...trickyKeys].sort());
    });
  });

  it('keeps scopes apart whose tenant and user strings would collide when joined', async () => {
    await asUser('a:b', 'c', (state) => state.set('k', 'a:b + c'));
    await asUser('a', 'b:c', (state) => state.set('k', 'a + b:c'));
    await asUser('a/b', 'c', (state) => state.set('k', 'a/b + c'));
    expect(await asUser('a:b', 'c', (state) => state.get('k'))).toBe('a:b + c');
    expect(await asUser('a', 'b:c', (state) => state.get('k'))).toBe('a + b:c');
    expect(await asUser('a', 'b/c', (state) => state.get('k'))).toBeUndefined();
  });
});

describe('SharedState atomic update', () => {
  it('ends at exactly 1,000 after 1,000 concurrent updates from 1,000 concurrent requests', async () => {
    const random = createRandom(testSeed());
    const delays = Array.from({ length: 1000 }, () => random.int(0, 3));
    const results = await Promise.all(
      delays.map((ms) =>
        withRequestContext({ tenantId: 't-atomic', userId: 'u1' }, async (ctx) => {
          await delay(ms);
          return ctx.sharedState.update<number>('counter', (n) => (n ?? 0) + 1);
        }),
      ),
    );
    expect(await asUser('t-atomic', 'u1', (state) => state.get('counter')), `seed ${random.seed}`).toBe(1000);
    // Every update saw a distinct value: none was lost or applied twice.
    expect(new Set(results).size).toBe(1000);
    expect(await asUser('t-atomic', 'u2', (state) => state.get('counter'))).toBeUndefined();
  });
});
