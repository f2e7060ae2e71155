import type { ServerResponse } from 'node:http';
import { context, trace } from '@opentelemetry/api';
import { recordError, requestContextOf } from '../../context/internal/request-scope.js';
import { RequestContextMissingError } from '../../errors/errors.js';
import { reportOnce } from '../../tracing/internal/report.js';
import type { ServerSentEventsOptions, ServerSentEventsRun } from '../types.js';
import type { EventTransport } from './event-sink.js';
import { runWithEventSink } from './emit.js';

/** What an error of `run` is sent as unless exposeError() says otherwise (HTTP's bare 500). */
const INTERNAL_ERROR = 'internal error';

/**
 * Answers the active HTTP request with server-sent events: status 200,
 * `content-type: text/event-stream`, then every progress event the request
 * emits while `run` works (emitProgress(), a tool's `emit`, a worker task's)
 * as `event: progress` + `data: <json>`, and last `run`'s result as
 * `event: result` + `data: <json>`; then the response ends. The events of
 * this request reach this response only. When `run` throws, its error is
 * recorded on the active span and the client gets `event: error` with
 * `{ "error": "internal error" }` (see `exposeError`). When the client goes
 * away, `signal` aborts and later events are undelivered.
 *
 * Call it inside httpRequestContext() (or any request context). Rejects with
 * RequestContextMissingError outside a request, TypeError for a bad `res` or
 * `run`, and Error when the response's headers were already sent; never with
 * `run`'s errors.
 *
 * ```ts
 * http.createServer(httpRequestContext({ identify }, (req, res) =>
 *   serverSentEvents(res, async (ctx, signal) => agent.answer(ctx, signal))));
 * ```
 */
export async function serverSentEvents<T>(res: ServerResponse, run: ServerSentEventsRun<T>, options: ServerSentEventsOptions = {}): Promise<void> {
  if (res === null || typeof res !== 'object' || typeof res.write !== 'function') throw new TypeError('serverSentEvents(res, run): res must be a node:http ServerResponse.');
  if (typeof run !== 'function') throw new TypeError('serverSentEvents(res, run): run must be a function.');
  if (options === null || typeof options !== 'object') throw new TypeError('serverSentEvents(res, run, options): options must be an object.');
  if (options.exposeError !== undefined && typeof options.exposeError !== 'function') throw new TypeError("serverSentEvents: option 'exposeError' must be a function.");
  const request = requestContextOf(context.active());
  if (!request) throw new RequestContextMissingError('serverSentEvents()');
  if (res.headersSent) throw new Error('serverSentEvents(): the response headers were already sent; call it before writing anything to the response.');

  res.statusCode = 200;
  res.setHeader('content-type', 'text/event-stream; charset=utf-8');
  res.setHeader('cache-control', 'no-cache');
  res.flushHeaders();
  const aborted = new AbortController();
  const onClose = (): void => {
    if (!res.writableFinished) aborted.abort(new Error('the client closed the event stream'));
  };
  res.once('close', onClose);
  const span = trace.getActiveSpan();
  try {
    const result = await runWithEventSink(request, sseEvents(res), () => run(request, aborted.signal));
    writeEvent(res, 'result', jsonOf(result));
  } catch (error) {
    if (span) recordError(span, error);
    writeEvent(res, 'error', JSON.stringify({ error: exposedError(options, error) }));
  } finally {
    res.off('close', onClose);
    if (!res.writableEnded) res.end();
  }
}

/** A response's connection for progress events. */
function sseEvents(res: ServerResponse): EventTransport {
  return {
    get open() {
      return isOpen(res);
    },
    send(json) {
      return writeEvent(res, 'progress', json);
    },
  };
}

function isOpen(res: ServerResponse): boolean {
  return !res.writableEnded && !res.destroyed;
}

/** One event; `json` never holds a line break (JSON.stringify escapes them), so it is one `data:` line. */
function writeEvent(res: ServerResponse, name: 'progress' | 'result' | 'error', json: string): boolean {
  if (!isOpen(res)) return false;
  res.write(`event: ${name}\ndata: ${json}\n\n`);
  return true;
}

function jsonOf(result: unknown): string {
  try {
    return JSON.stringify(result) ?? 'null';
  } catch (error) {
    reportOnce('sse-result-unserializable', 'a serverSentEvents() run returned a value that is not JSON; sent an error event instead.', error);
    throw new TypeError('serverSentEvents(): the result is not JSON-serializable.', { cause: error });
  }
}

/** The text an error of `run` is sent as: `internal error` unless exposeError() returns a string. */
function exposedError(options: ServerSentEventsOptions, error: unknown): string {
  if (!options.exposeError) return INTERNAL_ERROR;
  try {
    const exposed = options.exposeError(error);
    if (typeof exposed === 'string') return exposed;
  } catch (hookError) {
    reportOnce('sse-expose-error-threw', 'exposeError() threw; sent "internal error".', hookError);
  }
  return INTERNAL_ERROR;
}
