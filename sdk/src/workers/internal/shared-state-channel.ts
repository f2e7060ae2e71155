import { BroadcastChannel, threadId } from 'node:worker_threads';
import { SharedStateConflictError, SharedStateUnavailableError, SharedStateValueError } from '../../errors/errors.js';
import { reportOnce } from '../../tracing/internal/report.js';
import type { SharedStateScope, SharedStateStore } from '../../shared-state/types.js';
import { toErrorData } from './envelope.js';

// SharedState for worker threads whose store lives in the submitting thread
// (MemoryStore): requests travel over a BroadcastChannel named per pool and
// replies are addressed by thread id. `update` is optimistic: the worker
// computes the new value and the owning thread applies it only if the value
// is still the one the worker read (compare-and-set inside the store's atomic update).

type Operation = 'get' | 'set' | 'delete' | 'keys' | 'compareAndSet';

interface StoreRequest {
  kind: 'request';
  id: number;
  thread: number;
  op: Operation;
  scope: SharedStateScope;
  key?: string;
  json?: string;
  expected?: string | null;
  ttlMs?: number;
}

interface StoreReply {
  kind: 'reply';
  id: number;
  thread: number;
  ok: boolean;
  value?: unknown;
  /** compareAndSet lost the race: the value now stored (null when absent). */
  conflict?: { current: string | null };
  error?: { name: string; message: string };
}

const REQUEST_TIMEOUT_MS = 10_000;
const MAX_UPDATE_ATTEMPTS = 10_000;

class CompareAndSetConflict extends Error {
  readonly current: string | undefined;
  constructor(current: string | undefined) {
    super('compare-and-set conflict');
    this.current = current;
  }
}

/** Serves a store to the workers of one pool. Returns a function that stops serving. */
export function serveSharedState(channelName: string, store: SharedStateStore): () => void {
  const channel = new BroadcastChannel(channelName);
  channel.unref();
  channel.onmessage = (event) => {
    const request = (event as unknown as { data: StoreRequest }).data;
    if (request?.kind !== 'request') return;
    void answer(store, request).then((reply) => sendReply(channel, reply));
  };
  return () => channel.close();
}

/**
 * Posts a reply, never leaving an unhandled rejection in the thread that owns
 * the store. One that cannot be cloned (a store that answered with something
 * other than data) goes back as an error, so the worker is not left waiting;
 * one whose channel was closed meanwhile (the pool destroyed, isotrace
 * restarted) has nobody left to wait for it.
 */
function sendReply(channel: BroadcastChannel, reply: StoreReply): void {
  try {
    channel.postMessage(reply);
  } catch (error) {
    if ((error as { name?: unknown } | null)?.name !== 'DataCloneError') return;
    const message = `the store's answer cannot be sent to the worker thread (${(error as Error).message})`;
    channel.postMessage({ kind: 'reply', id: reply.id, thread: reply.thread, ok: false, error: { name: 'DataCloneError', message } } satisfies StoreReply);
  }
}

async function answer(store: SharedStateStore, request: StoreRequest): Promise<StoreReply> {
  const base = { kind: 'reply' as const, id: request.id, thread: request.thread };
  const { scope, key = '', json = 'null', ttlMs } = request;
  try {
    switch (request.op) {
      case 'get':
        return { ...base, ok: true, value: (await store.get(scope, key)) ?? null };
      case 'set':
        await store.set(scope, key, json, ttlMs);
        return { ...base, ok: true };
      case 'delete':
        return { ...base, ok: true, value: await store.delete(scope, key) };
      case 'keys':
        return { ...base, ok: true, value: await store.keys(scope) };
      case 'compareAndSet': {
        const expected = request.expected ?? undefined;
        await store.update(scope, key, (current) => {
          if (current !== expected) throw new CompareAndSetConflict(current);
          return json;
        }, ttlMs);
        return { ...base, ok: true };
      }
    }
  } catch (error) {
    if (error instanceof CompareAndSetConflict) return { ...base, ok: false, conflict: { current: error.current ?? null } };
    const { name, message } = toErrorData(error);
    return { ...base, ok: false, error: { name, message } };
  }
}

/** The store a worker thread uses when the real one lives in the submitting thread. */
export class ChannelStore implements SharedStateStore {
  readonly #channel: BroadcastChannel;
  readonly #pending = new Map<number, { resolve(reply: StoreReply): void; timer: NodeJS.Timeout }>();
  #nextId = 0;

  constructor(channelName: string) {
    this.#channel = new BroadcastChannel(channelName);
    this.#channel.unref();
    this.#channel.onmessage = (event) => {
      const reply = (event as unknown as { data: StoreReply }).data;
      if (reply?.kind !== 'reply' || reply.thread !== threadId) return;
      const pending = this.#pending.get(reply.id);
      if (!pending) return;
      this.#pending.delete(reply.id);
      clearTimeout(pending.timer);
      pending.resolve(reply);
    };
  }

  async get(scope: SharedStateScope, key: string): Promise<string | undefined> {
    return ((await this.#call({ op: 'get', scope, key })) as string | null) ?? undefined;
  }

  async set(scope: SharedStateScope, key: string, json: string, ttlMs?: number): Promise<void> {
    await this.#call({ op: 'set', scope, key, json, ttlMs });
  }

  async update(scope: SharedStateScope, key: string, fn: (current: string | undefined) => string, ttlMs?: number): Promise<string> {
    let current = await this.get(scope, key);
    for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
      const json = fn(current);
      const reply = await this.#send({ op: 'compareAndSet', scope, key, json, expected: current ?? null, ttlMs });
      if (reply.ok) return json;
      if (!reply.conflict) throw replyError(reply);
      current = reply.conflict.current ?? undefined;
    }
    throw new SharedStateConflictError(`SharedState.update('${key}') from a worker thread lost ${MAX_UPDATE_ATTEMPTS} races in a row to other writers; nothing was written.`);
  }

  async delete(scope: SharedStateScope, key: string): Promise<boolean> {
    return (await this.#call({ op: 'delete', scope, key })) as boolean;
  }

  async keys(scope: SharedStateScope): Promise<string[]> {
    return (await this.#call({ op: 'keys', scope })) as string[];
  }

  async close(): Promise<void> {
    this.#channel.close();
  }

  async #call(request: Omit<StoreRequest, 'kind' | 'id' | 'thread'>): Promise<unknown> {
    const reply = await this.#send(request);
    if (!reply.ok) throw replyError(reply);
    return reply.value;
  }

  #send(request: Omit<StoreRequest, 'kind' | 'id' | 'thread'>): Promise<StoreReply> {
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new SharedStateUnavailableError(`SharedState: the thread that owns the store did not answer within ${REQUEST_TIMEOUT_MS} ms.`));
      }, REQUEST_TIMEOUT_MS);
      timer.unref();
      this.#pending.set(id, { resolve, timer });
      try {
        this.#channel.postMessage({ ...request, kind: 'request', id, thread: threadId } satisfies StoreRequest);
      } catch (error) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reportOnce('shared-state-channel', 'could not send a SharedState request to the owning thread.', error);
        reject(new SharedStateUnavailableError('SharedState: could not reach the thread that owns the store.', { cause: error }));
      }
    });
  }
}

// The caller's errors cross as what they are: a bad value or a lost race is not an outage.
const CALLER_ERRORS = new Map<string, new (message: string) => Error>([
  ['SharedStateValueError', SharedStateValueError],
  ['SharedStateConflictError', SharedStateConflictError],
]);

function replyError(reply: StoreReply): Error {
  const CallerError = reply.error ? CALLER_ERRORS.get(reply.error.name) : undefined;
  if (CallerError) return new CallerError(reply.error!.message);
  const cause = reply.error ? `${reply.error.name}: ${reply.error.message}` : 'unknown error';
  return new SharedStateUnavailableError(`SharedState request failed in the thread that owns the store (${cause}).`);
}
