/**
 * Property-based, model-checked tests of SharedState scoping on the default
 * MemoryStore: two scopes (two tenants, or two users of one tenant, with ids
 * and keys that are arbitrary strings — separators, globs, unicode, lone
 * surrogates, `__proto__`, over-long) run random get/set/update/delete/keys
 * sequences in two concurrent requests. Each scope must behave exactly like
 * its own private map: a tenant never reads, lists, changes or deletes
 * another's value.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SharedStateValueError, withRequestContext, type JsonValue, type SharedState } from 'isotrace';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { fuzzSeed, settles, watchForCrashes, type CrashWatch } from './fuzz-helpers.ts';

let kit: TestTracing;
let watch: CrashWatch;
const seed = fuzzSeed('shared-state-keys');
const MAX_KEY_LENGTH = 1024;

beforeAll(async () => {
  watch = watchForCrashes();
  kit = await setupTestTracing();
});

afterEach(() => {
  expect(watch.crashes).toEqual([]);
});

afterAll(async () => {
  await kit?.shutdown();
  watch?.uninstall();
});

const hostile = fc.constantFrom(':', '::', '*', '?', '[a]', '{x}', '/', '\\', '\u0000', '%3A', '__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', '\ud800', '\udc00', 'a\ud83dz', '\u{1f600}', 'é', 'e\u0301', ' ', 'A', 'a');
const text = (max: number): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.array(hostile, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('')) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: max }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: max }) },
  );

/** Keys: mostly valid, sometimes empty or over the 1,024-character limit (SharedStateValueError). */
const key = fc.oneof(
  { weight: 12, arbitrary: text(12) },
  { weight: 1, arbitrary: fc.constantFrom('', 'k'.repeat(MAX_KEY_LENGTH), 'k'.repeat(MAX_KEY_LENGTH + 1), `${'\ud800'.repeat(MAX_KEY_LENGTH)}`) },
);

/** Two different scopes: two tenants (ids that collide when joined, among others) or two users of one tenant. */
const scopes = fc
  .oneof(
    fc.tuple(text(8), text(8), text(8), text(8)).map(([t1, u1, t2, u2]) => [{ tenantId: t1, userId: u1 }, { tenantId: t2, userId: u2 }] as const),
    fc.tuple(text(8), text(8), text(8)).map(([t, u1, u2]) => [{ tenantId: t, userId: u1 }, { tenantId: t, userId: u2 }] as const),
    fc.constantFrom(
      [{ tenantId: 'a:b', userId: 'c' }, { tenantId: 'a', userId: 'b:c' }] as const,
      [{ tenantId: '__proto__', userId: 'x' }, { tenantId: 'constructor', userId: 'x' }] as const,
      [{ tenantId: 't*', userId: '*' }, { tenantId: 't1', userId: 'u1' }] as const,
    ),
  )
  .filter(([a, b]) => a.tenantId !== b.tenantId || a.userId !== b.userId);

type Op = { op: 'set'; key: string; value: number } | { op: 'get' | 'delete' | 'update'; key: string } | { op: 'keys' };
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), key, value: fc.integer() }),
  fc.record({ op: fc.constantFrom('get' as const, 'delete' as const, 'update' as const), key }),
  fc.constant({ op: 'keys' as const }),
);

/** Keys some op of the other scope may use, so scopes really do share key strings. */
const program = fc
  .tuple(scopes, fc.array(key, { minLength: 1, maxLength: 6 }), fc.array(fc.tuple(fc.boolean(), op, fc.nat()), { maxLength: 40 }))
  .map(([pair, shared, ops]) => ({
    pair,
    // Most ops use the shared keys: then both scopes write and read the same key strings.
    ops: ops.map(([first, o, pick]) => ({ first, op: 'key' in o && pick % 3 !== 0 ? { ...o, key: shared[pick % shared.length]! } : o })),
  }));

function validKey(k: string): boolean {
  return k.length > 0 && k.length <= MAX_KEY_LENGTH;
}

/** What the programs store: which scope wrote it, a number, and (after update) which scope's value it replaced. */
type Entry = { mark: string; n: number; seen?: string | null };

/** Runs ops against one scope's SharedState and checks each result against a private model of that scope. */
async function runScope(state: SharedState, mark: string, ops: Op[]): Promise<void> {
  const model = new Map<string, Entry>();
  for (const [i, o] of ops.entries()) {
    if (i % 3 === 0) await new Promise((resolve) => setImmediate(resolve)); // interleave with the other scope
    if (o.op === 'keys') {
      expect((await state.keys()).sort()).toEqual([...model.keys()].sort());
      continue;
    }
    if (!validKey(o.key)) {
      const call = o.op === 'set' ? state.set(o.key, 0) : o.op === 'update' ? state.update(o.key, () => 0) : o.op === 'get' ? state.get(o.key) : state.delete(o.key);
      await expect(call).rejects.toBeInstanceOf(SharedStateValueError);
      continue;
    }
    switch (o.op) {
      case 'set':
        await state.set(o.key, { mark, n: o.value });
        model.set(o.key, { mark, n: o.value });
        break;
      case 'get':
        expect(await state.get(o.key), `get ${JSON.stringify(o.key)}`).toEqual(model.get(o.key));
        break;
      case 'update': {
        const next = await state.update<Entry>(o.key, (current) => ({ mark, n: (current?.n ?? 0) + 1, seen: current?.mark ?? null }));
        const expected: Entry = { mark, n: (model.get(o.key)?.n ?? 0) + 1, seen: model.get(o.key)?.mark ?? null };
        expect(next).toEqual(expected);
        model.set(o.key, expected);
        break;
      }
      case 'delete':
        expect(await state.delete(o.key), `delete ${JSON.stringify(o.key)}`).toBe(model.delete(o.key));
        break;
    }
  }
  // What is left is exactly this scope's own, and every value is marked as its own.
  expect((await state.keys()).sort()).toEqual([...model.keys()].sort());
  for (const k of model.keys()) expect((await state.get<Entry>(k))?.mark).toBe(mark);
  for (const k of await state.keys()) await state.delete(k); // leave the store empty for the next run
}

describe('fuzzed SharedState keys and scopes (fast-check, MemoryStore, two concurrent requests)', () => {
  it('each scope behaves like its own private map: never reads, lists, changes or deletes the other’s values', async () => {
    await fc.assert(
      fc.asyncProperty(program, async ({ pair, ops }) => {
        const [a, b] = pair;
        await settles(
          Promise.all([
            withRequestContext(a, (ctx) => runScope(ctx.sharedState, 'A', ops.filter((o) => o.first).map((o) => o.op))),
            withRequestContext(b, (ctx) => runScope(ctx.sharedState, 'B', ops.filter((o) => !o.first).map((o) => o.op))),
          ]),
          'two scopes running their programs',
        );
        expect(watch.crashes).toEqual([]);
      }),
      { seed, numRuns: 1500 },
    );
  });

  it('a value written under any key by one tenant is invisible to the other under the same key', async () => {
    await fc.assert(
      fc.asyncProperty(scopes, fc.uniqueArray(key.filter(validKey), { minLength: 1, maxLength: 20 }), async ([a, b], keys) => {
        await withRequestContext(a, async (ctx) => {
          for (const k of keys) await ctx.sharedState.set(k, `secret of ${JSON.stringify(a)}`);
        });
        await withRequestContext(b, async (ctx) => {
          for (const k of keys) expect(await ctx.sharedState.get(k)).toBeUndefined();
          expect(await ctx.sharedState.keys()).toEqual([]);
          for (const k of keys) expect(await ctx.sharedState.delete(k)).toBe(false);
        });
        await withRequestContext(a, async (ctx) => {
          expect((await ctx.sharedState.keys()).sort()).toEqual([...keys].sort());
          for (const k of keys) await ctx.sharedState.delete(k);
        });
      }),
      { seed, numRuns: 300 },
    );
    expect(({} as Record<string, unknown>).mark).toBeUndefined();
  });
});

describe('fuzzed SharedState values (fast-check, MemoryStore)', () => {
  const anything = fc.anything({
    maxDepth: 3,
    withBigInt: true,
    withBoxedValues: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withObjectString: true,
    withSparseArray: true,
    withTypedArray: true,
  });
  // Functions, symbol keys and toJSON methods, which fc.anything() does not make.
  const oddity = fc.constantFrom<unknown>(() => 1, { toJSON: () => undefined }, Object.assign([1], { toJSON: () => 2n }), { [Symbol('s')]: 1 }, Symbol('s'), undefined, Number.NaN);
  const value = fc.oneof({ weight: 4, arbitrary: anything }, { weight: 1, arbitrary: fc.tuple(anything, oddity).map(([outer, odd]) => ({ outer, odd })) });

  it('set either rejects with SharedStateValueError and stores nothing, or get returns exactly what was given', async () => {
    await fc.assert(
      fc.asyncProperty(value, async (given) => {
        await withRequestContext({ tenantId: 'fuzz-values', userId: 'u' }, async (ctx) => {
          const state = ctx.sharedState;
          const outcome = await state.set('v', given as JsonValue).then(
            () => undefined,
            (error: unknown) => error,
          );
          if (outcome === undefined) {
            // -0 is the one value JSON changes that set accepts: it is stored as 0.
            expect(await state.get('v')).toStrictEqual(withoutNegativeZero(given));
            await state.delete('v');
          } else {
            expect(outcome).toBeInstanceOf(SharedStateValueError);
            expect(await state.get('v')).toBeUndefined();
          }
        });
      }),
      { seed, numRuns: 1000 },
    );
  });
});

function withoutNegativeZero(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (Array.isArray(value)) return value.map(withoutNegativeZero);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutNegativeZero(v)]));
  return value;
}
