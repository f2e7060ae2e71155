import { thrownText } from '../../errors/internal/thrown.js';

/**
 * `handle` made awaitable, so a start that is synchronous keeps `await start()`
 * working: `then` resolves to `resolved`, the same handle without a `then`
 * (resolving to a thenable would make `await` unwrap it forever).
 */
export function awaitable<T extends object>(handle: T, resolved: T): T & PromiseLike<T> {
  return Object.assign(handle, {
    then<A = T, B = never>(onFulfilled?: ((value: T) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): PromiseLike<A | B> {
      return Promise.resolve(resolved).then(onFulfilled, onRejected);
    },
  });
}

/**
 * A start that failed, in the awaitable handle's place: a rejected promise, so
 * `await start()` and `start().catch()` see the error, and a caller that
 * ignores it gets Node's unhandled-rejection error instead of a handle that
 * silently does nothing. Never a synchronous throw (promise APIs reject).
 */
export function failedStart<T>(error: unknown): T & PromiseLike<T> {
  return Promise.reject(error instanceof Error ? error : new Error(thrownText(error))) as unknown as T & PromiseLike<T>;
}
