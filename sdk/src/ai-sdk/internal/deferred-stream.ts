/**
 * An async iterable handed out synchronously for a stream that arrives
 * later: the AI SDK tells a streaming tool by what `execute` returns at once,
 * while the traced stream comes from the dispatcher's promise. Each call
 * waits for the stream, then forwards to it (the dispatcher's stream runs
 * each step in the tool span's context, whatever context the consumer
 * resumes in).
 */
export function deferredStream<T>(stream: Promise<AsyncIterable<T>>): AsyncIterableIterator<T> {
  // A consumer that never iterates must not leave an unhandled rejection behind; one that does still sees it.
  stream.catch(() => {});
  let iterator: Promise<AsyncIterator<T>> | undefined;
  const source = (): Promise<AsyncIterator<T>> => (iterator ??= stream.then((s) => s[Symbol.asyncIterator]()));
  const deferred: AsyncIterableIterator<T> = {
    [Symbol.asyncIterator]: () => deferred,
    next: async (...args: [] | [unknown]) => (await source()).next(...args),
    return: async (value?: unknown) => {
      const it = await source();
      return it.return ? it.return(value) : { done: true, value: value as T };
    },
    throw: async (error?: unknown) => {
      const it = await source();
      if (it.throw) return it.throw(error);
      throw error;
    },
  };
  return deferred;
}
