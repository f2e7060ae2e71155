import { SharedStateValueError } from '../../errors/errors.js';
import type { JsonValue } from '../types.js';

const MAX_KEY_LENGTH = 1024;
// Deeper values would overflow the stack in the copy or in JSON.stringify (a
// RangeError instead of a clear SharedStateValueError).
const MAX_DEPTH = 1000;

/** Rejects keys that are not non-empty strings of bounded length. */
export function assertKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new SharedStateValueError(`SharedState keys are non-empty strings of at most ${MAX_KEY_LENGTH} characters; got ${describe(key)}.`);
  }
}

/**
 * Serializes a JSON value, naming the path of the first thing that is not
 * JSON data. The value is read exactly once, by a walk that checks and copies
 * in one go; the text is made from that copy. So what is checked is what is
 * stored: a getter that answers differently on a second read, a `toJSON`
 * method or a prototype's `toJSON` never gets a say, and anything JSON would
 * change or drop (holes, extra array properties, symbol keys) is rejected
 * instead of stored differently from what the caller gave.
 */
export function toJson(key: string, value: unknown): string {
  return JSON.stringify(copyJson(value, key, new Set(), 0));
}

export function fromJson<T extends JsonValue>(text: string | undefined): T | undefined {
  return text === undefined ? undefined : (JSON.parse(text) as T);
}

function copyJson(value: unknown, path: string, ancestors: Set<object>, depth: number): JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value;
    throw notJson(path, String(value));
  }
  if (typeof value !== 'object') throw notJson(path, kindOf(value));
  if (ancestors.has(value)) throw notJson(path, 'a circular reference');
  if (depth >= MAX_DEPTH) throw new SharedStateValueError(`SharedState value at '${path}' is nested more than ${MAX_DEPTH} levels deep; flatten it.`);
  ancestors.add(value);
  try {
    return Array.isArray(value) ? copyArray(value, path, ancestors, depth) : copyObject(value, path, ancestors, depth);
  } finally {
    ancestors.delete(value);
  }
}

function copyArray(array: unknown[], path: string, ancestors: Set<object>, depth: number): JsonValue[] {
  if (Object.getPrototypeOf(array) !== Array.prototype) throw notJson(path, `a ${array.constructor?.name ?? 'class'} instance`);
  const length = array.length;
  const ownKeys = Object.keys(array);
  if (ownKeys.length !== length) {
    // JSON would store a hole as null and drop a named property: not what the caller gave.
    for (let index = 0; index < length; index++) if (!Object.hasOwn(array, index)) throw notJson(`${path}[${index}]`, 'a hole in a sparse array');
    const named = ownKeys.find((name) => !/^(?:0|[1-9]\d*)$/.test(name)) ?? '';
    throw notJson(`${path}.${named}`, 'a named property of an array (JSON keeps only the items)');
  }
  rejectSymbolKeys(array, path);
  const copy: JsonValue[] = new Array<JsonValue>(length);
  for (let index = 0; index < length; index++) copy[index] = copyJson(array[index], `${path}[${index}]`, ancestors, depth + 1);
  return copy;
}

function copyObject(object: object, path: string, ancestors: Set<object>, depth: number): { [key: string]: JsonValue } {
  const proto = Object.getPrototypeOf(object) as unknown;
  if (proto !== Object.prototype && proto !== null) throw notJson(path, `a ${object.constructor?.name ?? 'class'} instance`);
  rejectSymbolKeys(object, path);
  // No prototype: a '__proto__' key stays a plain property, and nothing
  // inherited (a polluted Object.prototype.toJSON) takes part in stringify.
  const copy = Object.create(null) as { [key: string]: JsonValue };
  // Object.entries reads each property (getters included) exactly once.
  for (const [name, item] of Object.entries(object)) copy[name] = copyJson(item, `${path}.${name}`, ancestors, depth + 1);
  return copy;
}

function rejectSymbolKeys(value: object, path: string): void {
  const symbol = Object.getOwnPropertySymbols(value).find((candidate) => Object.prototype.propertyIsEnumerable.call(value, candidate));
  if (symbol !== undefined) throw notJson(`${path}[${String(symbol)}]`, 'a symbol-keyed property (JSON drops it)');
}

function kindOf(value: unknown): string {
  if (typeof value === 'bigint') return 'a BigInt';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a Symbol';
  return String(value);
}

function notJson(path: string, what: string): SharedStateValueError {
  return new SharedStateValueError(`SharedState value at '${path}' is ${what}; values must be JSON data (null, booleans, finite numbers, strings, arrays, plain objects).`);
}

function describe(value: unknown): string {
  return typeof value === 'string' ? `a string of length ${value.length}` : typeof value;
}
