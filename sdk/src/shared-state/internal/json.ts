import { SharedStateValueError } from '../../errors/errors.js';
import type { JsonValue } from '../types.js';

const MAX_KEY_LENGTH = 1024;

/** Rejects keys that are not non-empty strings of bounded length. */
export function assertKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new SharedStateValueError(`SharedState keys are non-empty strings of at most ${MAX_KEY_LENGTH} characters; got ${describe(key)}.`);
  }
}

/** Serializes a JSON value, naming the path of the first thing that is not JSON data. */
export function toJson(key: string, value: unknown): string {
  assertJsonValue(value, key, new Set());
  return JSON.stringify(value);
}

export function fromJson<T extends JsonValue>(text: string | undefined): T | undefined {
  return text === undefined ? undefined : (JSON.parse(text) as T);
}

function assertJsonValue(value: unknown, path: string, seen: Set<object>): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return;
    throw notJson(path, String(value));
  }
  if (typeof value !== 'object') throw notJson(path, typeof value);
  if (seen.has(value)) throw notJson(path, 'a circular reference');
  seen.add(value);
  if (Array.isArray(value)) {
    value.forEach((item, index) => assertJsonValue(item, `${path}[${index}]`, seen));
  } else {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) throw notJson(path, `a ${value.constructor?.name ?? 'class'} instance`);
    for (const [k, v] of Object.entries(value)) assertJsonValue(v, `${path}.${k}`, seen);
  }
  seen.delete(value);
}

function notJson(path: string, what: string): SharedStateValueError {
  return new SharedStateValueError(`SharedState value at '${path}' is ${what}; values must be JSON data (null, booleans, finite numbers, strings, arrays, plain objects).`);
}

function describe(value: unknown): string {
  return typeof value === 'string' ? `a string of length ${value.length}` : typeof value;
}
