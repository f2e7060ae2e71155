import type { MessagePort } from 'node:worker_threads';
import type { WorkerSettings } from '../../tracing/internal/runtime.js';
import type { ContextCarrier } from './carrier.js';
import type { SpanData } from './span-transfer.js';

/** Marks isotrace's task envelopes and replies, so a worker task can tell them from a plain piscina task. */
export const ENVELOPE = '__isotrace_task__';

/** What pool.run() sends: the user's task plus the context it was submitted in. */
export interface TaskEnvelope {
  [ENVELOPE]: 1;
  task: unknown;
  name: string;
  carrier: ContextCarrier;
  settings: WorkerSettings | undefined;
  /** The BroadcastChannel serving the submitting thread's SharedState store. */
  storeChannel: string | undefined;
  /** Where the task's progress events go, when the submitting request has a connection (in the transfer list). */
  events?: MessagePort;
}

/** An error as data: name, message and stack survive the thread hop. */
export interface ErrorData {
  name: string;
  message: string;
  stack?: string | undefined;
  code?: unknown;
}

/** What a worker task returns: its result or error, and the spans finished in the worker. */
export interface TaskReply {
  [ENVELOPE]: 1;
  ok: boolean;
  result?: unknown;
  error?: ErrorData;
  spans: SpanData[];
  /** How many progress events the task sent on the envelope's `events` port. */
  events?: number;
}

export function isEnvelope(value: unknown): value is TaskEnvelope {
  return typeof value === 'object' && value !== null && (value as Record<string, unknown>)[ENVELOPE] === 1 && 'carrier' in value;
}

export function isReply(value: unknown): value is TaskReply {
  return typeof value === 'object' && value !== null && (value as Record<string, unknown>)[ENVELOPE] === 1 && 'spans' in value;
}

export function toErrorData(error: unknown): ErrorData {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  return { name: error.name, message: error.message, stack: error.stack, code: (error as { code?: unknown }).code };
}

export function fromErrorData(data: ErrorData): Error {
  const error = new Error(data.message);
  error.name = data.name;
  if (data.stack !== undefined) error.stack = data.stack;
  if (data.code !== undefined) (error as { code?: unknown }).code = data.code;
  return error;
}
