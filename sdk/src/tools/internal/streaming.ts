import { Readable } from 'node:stream';
import type { ReadableStreamReadResult } from 'node:stream/web';
import { context, type Context, type Span } from '@opentelemetry/api';

/** How consuming a streamed tool result ended, recorded as `isotrace.stream.outcome`. */
export type StreamOutcome = 'completed' | 'cancelled' | 'failed';

/** The tool call a streamed result belongs to. */
export interface StreamScope {
  /** The tool span's context: every value is produced inside it. */
  readonly context: Context;
  readonly span: Span;
  /**
   * Ends the tool call once, in the consumer's context (its end-of-call
   * audits look at where the stream was consumed). May throw
   * IsolationViolationError in `audit: 'throw'` mode.
   */
  end(outcome: StreamOutcome, itemCount: number, error?: unknown): void;
}

/** Whether a tool's result is a stream traceStream() wraps (sync iterables such as arrays and strings are plain values). */
export function isStreamResult(result: unknown): result is ReadableStream | Readable | AsyncIterable<unknown> {
  return isReadableStream(result) || isNodeReadable(result) || isAsyncIterable(result);
}

/**
 * A streamed tool result wrapped so its tool span covers the consumption:
 * an async iterable (an async generator above all) comes back as an async
 * iterator, a web ReadableStream as a ReadableStream and a node:stream
 * Readable as a Readable, each yielding the very same values.
 */
export function traceStream(result: ReadableStream | Readable | AsyncIterable<unknown>, scope: StreamScope): unknown {
  if (isReadableStream(result)) return traceReadableStream(result, scope);
  if (isNodeReadable(result)) {
    return Readable.from(traceAsyncIterable(result, scope), { objectMode: result.readableObjectMode, highWaterMark: result.readableHighWaterMark });
  }
  return traceAsyncIterable(result, scope);
}

/** Each next() runs in the tool span's context; the end (done, a throw, or the consumer's return()) ends the call. */
function traceAsyncIterable<T>(source: AsyncIterable<T>, scope: StreamScope): AsyncIterableIterator<T> {
  const inScope = <R>(fn: () => R): R => context.with(scope.context, fn);
  const iterator = inScope(() => source[Symbol.asyncIterator]());
  let items = 0;
  // One step of next() or throw(): in the tool's scope, counted, and the span ended on the last or a failed one.
  const advance = async (step: () => Promise<IteratorResult<T>>): Promise<IteratorResult<T>> => {
    let result: IteratorResult<T>;
    try {
      result = await inScope(step);
    } catch (error) {
      scope.end('failed', items, error);
      throw error;
    }
    if (result.done) scope.end('completed', items);
    else items++;
    return result;
  };
  const traced: AsyncIterableIterator<T> = {
    [Symbol.asyncIterator]: () => traced,
    next: (...args: [] | [unknown]) => advance(() => iterator.next(...args)),
    // The consumer stopped early (`break` in for await, or a dispose): let the source clean up, then end.
    async return(value?: unknown) {
      let step: IteratorResult<T>;
      try {
        step = iterator.return ? await inScope(() => iterator.return!(value)) : { done: true, value: value as T };
      } catch (error) {
        scope.end('failed', items, error);
        throw error;
      }
      scope.end('cancelled', items);
      return step;
    },
  };
  if (iterator.throw) traced.throw = (thrown?: unknown) => advance(() => iterator.throw!(thrown));
  return traced;
}

/** Pulls one chunk per read of the wrapper (no read-ahead), inside the tool span's context. */
function traceReadableStream<T>(source: ReadableStream<T>, scope: StreamScope): ReadableStream<T> {
  const reader = source.getReader();
  let items = 0;
  // Ends the call before the stream closes or errors: a violation thrown in audit 'throw' mode must still reach the reader.
  const ended = (controller: ReadableStreamDefaultController<T>, outcome: StreamOutcome, error?: unknown): boolean => {
    try {
      scope.end(outcome, items, error);
      return true;
    } catch (violation) {
      controller.error(violation);
      return false;
    }
  };
  return new ReadableStream<T>(
    {
      async pull(controller) {
        let step: ReadableStreamReadResult<T>;
        try {
          step = await context.with(scope.context, () => reader.read());
        } catch (error) {
          if (ended(controller, 'failed', error)) controller.error(error);
          return;
        }
        if (!step.done) {
          items++;
          controller.enqueue(step.value);
        } else if (ended(controller, 'completed')) controller.close();
      },
      async cancel(reason) {
        try {
          await context.with(scope.context, () => reader.cancel(reason));
        } finally {
          scope.end('cancelled', items);
        }
      },
    },
    { highWaterMark: 0 },
  );
}

function isReadableStream(value: unknown): value is ReadableStream {
  return value instanceof ReadableStream || (typeof (value as ReadableStream | null)?.getReader === 'function' && typeof (value as ReadableStream).cancel === 'function');
}

function isNodeReadable(value: unknown): value is Readable {
  return value instanceof Readable;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown> | null | undefined)?.[Symbol.asyncIterator] === 'function';
}
