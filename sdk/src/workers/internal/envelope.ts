import type { MessagePort } from 'node:worker_threads';
import { thrownText } from '../../errors/internal/thrown.js';
import type { ContextCarrier } from './carrier.js';
import type { SpanData } from './span-transfer.js';
import type { WorkerSetup } from './worker-setup.js';

/** Marks isotrace's task envelopes, so a worker task can tell them from a plain piscina task. */
export const ENVELOPE = '__isotrace_task__';
/** Marks a worker task's replies, so pool.run() can tell them from a plain worker's result. */
export const REPLY = '__isotrace_reply__';

/**
 * What pool.run() sends: the user's task plus the context it was submitted in.
 * An array rather than an object: structured clone pays per object and per
 * property, on both threads.
 */
export type TaskEnvelope = [
  marker: typeof ENVELOPE,
  task: unknown,
  name: string,
  carrier: ContextCarrier,
  /** What a thread needs to set up tracing at its first task (see worker-setup.ts). */
  setup: WorkerSetup,
  /** Where the task's progress events go, when the submitting request has a connection (in the transfer list). */
  events: MessagePort | undefined,
];

/** An error as data: name, message and stack survive the thread hop. */
export interface ErrorData {
  name: string;
  message: string;
  stack?: string | undefined;
  code?: unknown;
}

/**
 * What a worker task returns: its result or error, the spans finished in the
 * worker, how many progress events it sent, and the isolation violations
 * counted in the worker (check, count, …).
 */
export type TaskReply =
  | [marker: typeof REPLY, ok: true, result: unknown, spans: SpanData[], events: number, violations: ViolationCounts]
  | [marker: typeof REPLY, ok: false, error: ErrorData, spans: SpanData[], events: number, violations: ViolationCounts];

/** Violations by check as a flat run of (check, count) pairs. */
export type ViolationCounts = (string | number)[];

export function isEnvelope(value: unknown): value is TaskEnvelope {
  return Array.isArray(value) && value.length === 6 && value[0] === ENVELOPE;
}

export function isReply(value: unknown): value is TaskReply {
  return Array.isArray(value) && value.length === 6 && value[0] === REPLY;
}

export function toErrorData(error: unknown): ErrorData {
  if (!(error instanceof Error)) return { name: 'Error', message: thrownText(error) };
  // Text and a plain code only: the error must reach the submitting thread whatever else it holds.
  const { name, message, stack } = error;
  const code = (error as { code?: unknown }).code;
  return {
    name: thrownText(name),
    message: thrownText(message),
    stack: typeof stack === 'string' ? stack : undefined,
    code: typeof code === 'string' || typeof code === 'number' ? code : undefined,
  };
}

export function fromErrorData(data: ErrorData): Error {
  const error = new Error(data.message);
  error.name = data.name;
  if (data.stack !== undefined) error.stack = data.stack;
  if (data.code !== undefined) (error as { code?: unknown }).code = data.code;
  return error;
}
