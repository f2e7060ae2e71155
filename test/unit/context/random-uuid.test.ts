import { describe, expect, it } from 'vitest';
import { randomUuid } from '../../../sdk/src/context/internal/random-uuid.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('randomUuid (request and call ids)', () => {
  it('makes version 4 UUIDs, none twice, across many refills of its entropy pool', () => {
    const ids = Array.from({ length: 5_000 }, randomUuid); // 256 per pool: about 20 refills
    for (const id of ids) expect(id).toMatch(V4);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('returns strings that stay as they were after later calls (no shared buffer behind them)', () => {
    const first = randomUuid();
    const copy = `${first}`;
    for (let i = 0; i < 600; i++) randomUuid();
    expect(first).toBe(copy);
  });

  it('uses every hex digit in every position over many ids (no stuck byte)', () => {
    const digits = Array.from({ length: 36 }, () => new Set<string>());
    for (let i = 0; i < 2_000; i++) [...randomUuid()].forEach((c, k) => digits[k]!.add(c));
    const variable = [...Array(36).keys()].filter((k) => ![8, 13, 14, 18, 19, 23].includes(k));
    for (const k of variable) expect(digits[k]!.size, `position ${k}`).toBe(16);
    expect([...digits[19]!].sort()).toEqual(['8', '9', 'a', 'b']);
  });
});
