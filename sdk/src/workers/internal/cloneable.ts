import { thrownText } from '../../errors/internal/thrown.js';

/**
 * Where `value` holds what structured clone cannot send (a function, a symbol,
 * a promise, a weak collection), as a path such as `result.items[2].onDone`;
 * undefined when nothing was found. A task's result is checked before its
 * reply is sent: a reply that fails to clone is lost whole (the task's spans
 * and violation counts with it) and piscina ends the thread. Covers what
 * results hold in practice, not every host object; what it misses fails as
 * it did before.
 */
export function unclonablePath(value: unknown): string | undefined {
  if (isPlainValue(value)) return undefined;
  const below = find(value, new Set());
  return below === undefined ? undefined : `result${below}`;
}

/** The path from `value` down to what cannot be cloned ('' for `value` itself); built only once something is found. */
function find(value: unknown, seen: Set<object>): string | undefined {
  if (typeof value === 'function' || typeof value === 'symbol') return '';
  if (typeof value !== 'object' || value === null || seen.has(value) || sendsAsIs(value)) return undefined;
  if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef) return '';
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (isPlainValue(item)) continue;
      const below = find(item, seen);
      if (below !== undefined) return `[${i}]${below}`;
    }
    return undefined;
  }
  if (value instanceof Map) {
    for (const [key, entry] of value) {
      const inKey = find(key, seen);
      if (inKey !== undefined) return ` key${inKey}`;
      const below = find(entry, seen);
      if (below !== undefined) return `.get(${thrownText(key)})${below}`;
    }
    return undefined;
  }
  if (value instanceof Set) {
    for (const entry of value) {
      const below = find(entry, seen);
      if (below !== undefined) return ` entry${below}`;
    }
    return undefined;
  }
  // Structured clone sends an object's own enumerable string-keyed properties.
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    if (isPlainValue(item)) continue;
    const below = find(item, seen);
    if (below !== undefined) return `.${key}${below}`;
  }
  return undefined;
}

/** A string, number, boolean, bigint, undefined or null: always cloned. */
function isPlainValue(value: unknown): boolean {
  return value === null || (typeof value !== 'object' && typeof value !== 'function' && typeof value !== 'symbol');
}

/** Objects structured clone sends whole, without looking at properties. */
function sendsAsIs(value: object): boolean {
  return ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp || value instanceof Error || value instanceof Blob;
}
