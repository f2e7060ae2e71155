import { describe, it, expect } from 'vitest';
import { MemoryStore, type SharedStateScope } from 'isotrace/shared-state';
import { delay } from '../../helpers/random.js';

const alice: SharedStateScope = { tenantId: 't1', userId: 'alice' };
const bob: SharedStateScope = { tenantId: 't1', userId: 'bob' };
const otherTenant: SharedStateScope = { tenantId: 't2', userId: 'alice' };

async function eventuallyUndefined(read: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    if ((await read()) === undefined) return;
    await delay(10);
  }
  throw new Error('value never expired');
}

describe('MemoryStore', () => {
  it('stores JSON text per scope and keeps scopes apart', async () => {
    const store = new MemoryStore();
    await store.set(alice, 'k', '"alice"');
    await store.set(bob, 'k', '"bob"');
    expect(await store.get(alice, 'k')).toBe('"alice"');
    expect(await store.get(bob, 'k')).toBe('"bob"');
    expect(await store.get(otherTenant, 'k')).toBeUndefined();
    expect(await store.keys(otherTenant)).toEqual([]);

    expect(await store.delete(bob, 'k')).toBe(true);
    expect(await store.get(alice, 'k')).toBe('"alice"');
    expect(await store.keys(alice)).toEqual(['k']);
    await store.close();
  });

  it('keeps apart scopes whose strings would collide when joined, and keys that look like paths', async () => {
    const store = new MemoryStore();
    await store.set({ tenantId: 'a:b', userId: 'c' }, 'k', '1');
    await store.set({ tenantId: 'a', userId: 'b:c' }, '../a:b/c/k', '2');
    expect(await store.get({ tenantId: 'a', userId: 'b:c' }, 'k')).toBeUndefined();
    expect(await store.get({ tenantId: 'a:b', userId: 'c' }, '../a:b/c/k')).toBeUndefined();
    expect(await store.keys({ tenantId: 'a:b', userId: 'c' })).toEqual(['k']);
    await store.close();
  });

  it('applies update to the current text and resolves to the stored text', async () => {
    const store = new MemoryStore();
    const seen: Array<string | undefined> = [];
    expect(await store.update(alice, 'n', (current) => (seen.push(current), '1'))).toBe('1');
    expect(await store.update(alice, 'n', (current) => (seen.push(current), String(Number(current) + 1)))).toBe('2');
    expect(seen).toEqual([undefined, '1']);
    expect(await store.get(alice, 'n')).toBe('2');
    expect(await store.get(bob, 'n')).toBeUndefined();
    await store.close();
  });

  it('drops a value set with a TTL once it has passed and keeps the others', async () => {
    const store = new MemoryStore({ sweepIntervalMs: 5 });
    await store.set(alice, 'brief', '1', 20);
    await store.set(alice, 'forever', '1');
    await eventuallyUndefined(() => store.get(alice, 'brief'));
    expect(await store.keys(alice)).toEqual(['forever']);
    expect(await store.delete(alice, 'brief')).toBe(false);
    await store.close();
  });

  it('rejects a bad sweepIntervalMs with a TypeError naming it', () => {
    expect(() => new MemoryStore({ sweepIntervalMs: 0 })).toThrow(TypeError);
    expect(() => new MemoryStore({ sweepIntervalMs: Number.NaN })).toThrow(/sweepIntervalMs/);
  });

  it('close() resolves, also twice and with expiring keys pending', async () => {
    const store = new MemoryStore({ sweepIntervalMs: 10 });
    await store.set(alice, 'ttl', '1', 60_000);
    await expect(store.close()).resolves.toBeUndefined();
    await expect(store.close()).resolves.toBeUndefined();
  });
});
