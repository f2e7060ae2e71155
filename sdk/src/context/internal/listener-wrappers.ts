import type { EventEmitter } from 'node:events';

/** Any listener function, as the emitter passes its arguments and `this`. */
export type ListenerFunction = (this: unknown, ...args: unknown[]) => unknown;

/**
 * Decides, for one listener being added to `emitter`, what to register
 * instead: a function that calls it (with a check or a context around it), or
 * undefined to register the listener as given.
 */
export type WrapListener = (listener: ListenerFunction, emitter: object) => ListenerFunction | undefined;

// Marks isotrace's own wrappers (and the functions bindToRequest() returns), which are never wrapped again.
const WRAPPED = Symbol('isotrace.wrapped-listener');

/** Marks `fn` so that neither the callback audit nor a bound emitter wraps it. */
export function markWrapped<F extends object>(fn: F): F {
  Object.defineProperty(fn, WRAPPED, { value: true });
  return fn;
}

function isWrapped(listener: unknown): boolean {
  return typeof listener === 'function' && (listener as { [WRAPPED]?: true })[WRAPPED] === true;
}

const EMITTER_ADDS = ['on', 'addListener', 'prependListener'] as const;
// once() is rebuilt on top of on(): Node's own once-wrapper would hide our wrapper one `.listener` level too deep for removeListener(original).
const EMITTER_ONCES = { once: 'on', prependOnceListener: 'prependListener' } as const;

type AddListener = (this: EventEmitter, type: string | symbol, listener: ListenerFunction) => EventEmitter;
type Methods = Record<string, AddListener>;

/**
 * Replaces the listener-adding methods of `target` (EventEmitter.prototype,
 * or one emitter) so every listener goes through `wrap`. A wrapper carries the
 * original as `.listener`, like Node's once-wrappers: `removeListener(type,
 * original)`, `off`, `listeners()` and `listenerCount(type, original)` keep
 * working with the function the caller gave. Returns what puts the methods back.
 */
export function wrapEmitterListeners(target: EventEmitter, wrap: WrapListener): () => void {
  const methods = target as unknown as Methods;
  const saved = savedDescriptors(target, [...EMITTER_ADDS, ...Object.keys(EMITTER_ONCES)]);
  for (const name of EMITTER_ADDS) {
    const previous = methods[name]!;
    replace(target, name, function (this: EventEmitter, type: string | symbol, listener: ListenerFunction) {
      const wrapped = typeof listener === 'function' && !isWrapped(listener) ? wrap(listener, this) : undefined;
      return previous.call(this, type, wrapped ? asWrapperOf(wrapped, listener) : listener);
    });
  }
  for (const [name, add] of Object.entries(EMITTER_ONCES)) {
    const previous = methods[name]!;
    replace(target, name, function (this: EventEmitter, type: string | symbol, listener: ListenerFunction) {
      const wrapped = typeof listener === 'function' && !isWrapped(listener) ? wrap(listener, this) : undefined;
      if (!wrapped) return previous.call(this, type, listener);
      // Through this[add], as Node's once() goes through this.on(): a Readable's on('data') must still start the flow.
      return (this as unknown as Methods)[add]!.call(this, type, onceWrapper(this, type, wrapped, listener));
    });
  }
  return () => restoreDescriptors(target, saved);
}

/** Node's once semantics around `wrapped`: removed before it runs, runs once, with the emitter as `this`. */
function onceWrapper(emitter: EventEmitter, type: string | symbol, wrapped: ListenerFunction, listener: ListenerFunction): ListenerFunction {
  let fired = false;
  const once = function (...args: unknown[]): unknown {
    if (fired) return undefined;
    fired = true;
    emitter.removeListener(type, once as (...a: unknown[]) => void);
    return wrapped.apply(emitter, args);
  };
  return asWrapperOf(once, listener);
}

function asWrapperOf(wrapper: ListenerFunction, listener: ListenerFunction): ListenerFunction {
  (wrapper as { listener?: ListenerFunction }).listener = listener;
  return markWrapped(wrapper);
}

/** EventTarget's add options (Node's types have no global name for them). */
interface AddOptions {
  capture?: boolean;
  once?: boolean;
  passive?: boolean;
  signal?: AbortSignal;
}

type EventTargetListener = ((event: Event) => unknown) | { handleEvent(event: Event): unknown };
type AddEventListener = (this: EventTarget, type: string, listener: EventTargetListener | null, options?: boolean | AddOptions) => void;
type RemoveEventListener = (this: EventTarget, type: string, listener: EventTargetListener | null, options?: boolean | { capture?: boolean }) => void;

// The wrapper registered for each (target, type, capture, listener), so removeEventListener(original)
// finds it and adding the same listener again stays a no-op. Weakly held: it never keeps a target alive.
const wrappers = new WeakMap<EventTarget, Map<string, WeakMap<object, ListenerFunction>>>();
// The removeEventListener replacements made here (each finds any wrapper through `wrappers`).
const ownRemovers = new WeakSet<object>();

/**
 * Replaces addEventListener/removeEventListener of `target`
 * (EventTarget.prototype, or one target) so every listener goes through
 * `wrap`, keeping EventTarget's rules: the same listener added twice (same
 * type and capture) is registered once, removeEventListener(original)
 * removes it, `once` and `signal` still remove it. Listeners Node adds with
 * its internal weak-reference option are left alone (a wrapper held weakly
 * would be collected while the original lives). Returns what puts the
 * methods back; removeEventListener stays able to find the wrappers already
 * registered (restoring it would leave them unremovable), and is put back only
 * when no wrapper was ever registered.
 */
export function wrapEventTargetListeners(target: EventTarget, wrap: WrapListener): () => void {
  // A remover of ours already in place (left by an earlier run, or on the prototype) finds every wrapper: all share one record.
  const replaceRemove = !ownRemovers.has(target.removeEventListener);
  const saved = savedDescriptors(target, replaceRemove ? ['addEventListener', 'removeEventListener'] : ['addEventListener']);
  const previousAdd = target.addEventListener as AddEventListener;
  const previousRemove = target.removeEventListener as RemoveEventListener;
  let wrappedAny = false;
  replace(target, 'addEventListener', function (this: EventTarget, type: string, listener: EventTargetListener | null, options?: boolean | AddOptions) {
    if (listener === null || listener === undefined || isWrapped(listener) || isWeak(options)) return previousAdd.call(this, type, listener, options);
    const key = listenerKey(type, options);
    const known = wrappers.get(this)?.get(key)?.get(listener);
    if (known) return previousAdd.call(this, type, known as EventTargetListener, options);
    const wrapped = wrap(callableOf(listener), this);
    if (!wrapped) return previousAdd.call(this, type, listener, options);
    wrappedAny = true;
    const wrapper = registerWrapper(this, key, listener, wrapped, options);
    return previousAdd.call(this, type, wrapper as EventTargetListener, options);
  });
  if (replaceRemove) {
    const remove = function (this: EventTarget, type: string, listener: EventTargetListener | null, options?: boolean | { capture?: boolean }): void {
      const wrapper = listener ? forgetWrapper(this, listenerKey(type, options), listener) : undefined;
      if (wrapper) previousRemove.call(this, type, wrapper as EventTargetListener, options);
      // Also the listener itself: it may have been added before the wrapping began, and one remove clears what one add made.
      return previousRemove.call(this, type, listener, options);
    };
    ownRemovers.add(remove);
    replace(target, 'removeEventListener', remove);
  }
  return () => restoreDescriptors(target, wrappedAny ? saved.filter(([name]) => name !== 'removeEventListener') : saved);
}

function registerWrapper(target: EventTarget, key: string, listener: object, wrapped: ListenerFunction, options: boolean | AddOptions | undefined): ListenerFunction {
  const once = typeof options === 'object' && options.once === true;
  const wrapper = markWrapped(function (this: unknown, event: unknown): unknown {
    if (once) forgetWrapper(target, key, listener);
    return wrapped.call(this, event);
  });
  let byKey = wrappers.get(target);
  if (!byKey) wrappers.set(target, (byKey = new Map()));
  let byListener = byKey.get(key);
  if (!byListener) byKey.set(key, (byListener = new WeakMap()));
  byListener.set(listener, wrapper);
  const signal = typeof options === 'object' ? options.signal : undefined;
  // The signal removes the wrapper from the target: the record of it must go too, or a later add would be swallowed.
  if (signal && !signal.aborted) signal.addEventListener('abort', markWrapped(() => forgetWrapper(target, key, listener)), { once: true });
  return wrapper;
}

function forgetWrapper(target: EventTarget, key: string, listener: object): ListenerFunction | undefined {
  const byListener = wrappers.get(target)?.get(key);
  const wrapper = byListener?.get(listener);
  if (wrapper) byListener!.delete(listener);
  return wrapper;
}

/** EventTarget tells registrations apart by type, listener and capture only. */
function listenerKey(type: string, options: boolean | { capture?: boolean } | undefined): string {
  const capture = typeof options === 'boolean' ? options : options?.capture === true;
  return `${capture ? 'capture' : 'bubble'}:${String(type)}`;
}

function callableOf(listener: EventTargetListener): ListenerFunction {
  if (typeof listener === 'function') return listener as ListenerFunction;
  // handleEvent is looked up at each dispatch, as EventTarget does.
  return (event: unknown) => listener.handleEvent(event as Event);
}

/** Node's internal weak-listener option (AbortSignal.any and friends), a symbol-keyed option named `kWeak`. */
function isWeak(options: boolean | AddOptions | undefined): boolean {
  return typeof options === 'object' && options !== null && Object.getOwnPropertySymbols(options).some((symbol) => symbol.description === 'kWeak');
}

type SavedDescriptors = Array<[string, PropertyDescriptor | undefined]>;

function savedDescriptors(target: object, names: readonly string[]): SavedDescriptors {
  return names.map((name) => [name, Object.getOwnPropertyDescriptor(target, name)]);
}

/** Puts back own methods as they were (a prototype's), and deletes those that were inherited (an instance's). */
function restoreDescriptors(target: object, saved: SavedDescriptors): void {
  for (const [name, descriptor] of saved) {
    if (descriptor) Object.defineProperty(target, name, descriptor);
    else delete (target as Record<string, unknown>)[name];
  }
}

function replace(target: object, name: string, fn: (...args: never[]) => unknown): void {
  Object.defineProperty(fn, 'name', { value: name });
  const existing = Object.getOwnPropertyDescriptor(target, name);
  Object.defineProperty(target, name, { value: fn, writable: true, configurable: true, enumerable: existing?.enumerable ?? false });
}
