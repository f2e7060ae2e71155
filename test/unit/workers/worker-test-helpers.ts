// Helpers shared by the worker unit tests.
import { expect } from 'vitest';

/** The error `promise` rejects with; fails the test when it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    const value = await promise;
    expect.fail(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return error as Error;
  }
}

/** A flag two tasks on different threads share: set to 1 by the task that started. */
export function startedFlag(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4));
}

// Atomics.waitAsync is in Node 24 but not in the ES2023 lib this project compiles against.
type WaitAsync = (array: Int32Array, index: number, value: number, timeoutMs: number) => { async: boolean; value: Promise<string> | string };

/** Waits (without blocking the event loop) until a worker sets flag[0]. */
export async function waitForFlag(flag: Int32Array): Promise<void> {
  const { async, value } = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync(flag, 0, 0, 30_000);
  expect(async ? await value : value).not.toBe('timed-out');
}
