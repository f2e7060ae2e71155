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
export function unclonablePath(value: unknown, path = 'result', seen = new Set<object>()): string | undefined {
  if (typeof value === 'function' || typeof value === 'symbol') return path;
  if (typeof value !== 'object' || value === null || seen.has(value) || sendsAsIs(value)) return undefined;
  if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef) return path;
  seen.add(value);
  if (value instanceof Map) {
    for (const [key, entry] of value) {
      const found = unclonablePath(key, `${path} key`, seen) ?? unclonablePath(entry, `${path}.get(${thrownText(key)})`, seen);
      if (found) return found;
    }
    return undefined;
  }
  if (value instanceof Set) {
    for (const entry of value) {
      const found = unclonablePath(entry, `${path} entry`, seen);
      if (found) return found;
    }
    return undefined;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = unclonablePath(value[i], `${path}[${i}]`, seen);
      if (found) return found;
    }
    return undefined;
  }
  // Structured clone sends an object's own enumerable string-keyed properties.
  for (const key of Object.keys(value)) {
    const found = unclonablePath((value as Record<string, unknown>)[key], `${path}.${key}`, seen);
    if (found) return found;
  }
  return undefined;
}

/** Objects structured clone sends whole, without looking at properties. */
function sendsAsIs(value: object): boolean {
  return ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp || value instanceof Error || value instanceof Blob;
}
