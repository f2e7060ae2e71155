// The check of a worker task's result before its reply is sent (workers/internal/cloneable.ts):
// it must find what structured clone rejects, and only that, for what results hold.
import { describe, expect, it } from 'vitest';
import { unclonablePath } from '../../../sdk/src/workers/internal/cloneable.ts';

class Invoice {
  constructor(readonly total: number) {}
  describe(): string {
    return `total ${this.total}`; // on the prototype: structured clone drops it, does not fail
  }
}

const cyclic: Record<string, unknown> = { name: 'loop' };
cyclic.self = cyclic;

const samples: Array<[string, unknown, string | undefined]> = [
  ['plain data', { items: [1, 'two', true, null, undefined], nested: { at: new Date(0), re: /x/g } }, undefined],
  ['binary', { bytes: new Uint8Array(4), buffer: new ArrayBuffer(2), view: new DataView(new ArrayBuffer(2)) }, undefined],
  ['a class instance with a method on its prototype', new Invoice(3), undefined],
  ['an error', { error: new RangeError('bad') }, undefined],
  ['a cycle', cyclic, undefined],
  ['maps and sets of data', { m: new Map([['a', 1]]), s: new Set([1, 2]) }, undefined],
  ['a function', () => 1, 'result'],
  ['a symbol', Symbol('s'), 'result'],
  ['a number', 7, undefined],
  ['a nested function', { items: [{ ok: 1 }, { onDone: () => 1 }] }, 'result.items[1].onDone'],
  ['a symbol value', { kind: Symbol('k') }, 'result.kind'],
  ['a promise', { later: Promise.resolve(1) }, 'result.later'],
  ['a weak map', { cache: new WeakMap() }, 'result.cache'],
  ['a function in a map', { m: new Map([['cb', () => 1]]) }, 'result.m.get(cb)'],
  ['a function in a set', { s: new Set([() => 1]) }, 'result.s entry'],
];

describe('unclonablePath', () => {
  for (const [name, value, path] of samples) {
    it(`${name}: ${path ?? 'nothing'}, as structured clone decides`, () => {
      expect(unclonablePath(value)).toBe(path);
      if (path === undefined) expect(() => structuredClone(value)).not.toThrow();
      else expect(() => structuredClone(value)).toThrow();
    });
  }
});
