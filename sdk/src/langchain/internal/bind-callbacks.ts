import { context } from '@opentelemetry/api';
import { BaseCallbackHandler, type CallbackHandlerMethods } from '@langchain/core/callbacks/base';
import { consumeCallback } from '@langchain/core/callbacks/promises';
import { thrownText } from '../../errors/internal/thrown.js';

/** Marks a handler bindCallbacks() made: binding twice changes nothing. */
const BOUND = Symbol('isotrace.langchain.bound');

type HandlerMethod = (...args: unknown[]) => unknown;

/**
 * Makes LangChain callback handlers run in the request that caused each
 * callback, whatever LangChain's background-callback setting.
 *
 * By default (LANGCHAIN_CALLBACKS_BACKGROUND unset or `true`) LangChain
 * queues every callback on one process-wide queue, and each queued callback
 * runs in the async context of the task before it: another request's. A
 * handler that reads getRequestContext(), logs with request fields or opens
 * spans then works for the wrong tenant. A bound handler is called by
 * LangChain where the callback happens (the run's own request), takes that
 * request with it, and still runs on LangChain's queue in background mode
 * (so the run does not wait for it and `awaitAllCallbacks()` still waits for
 * it), or inline when the handler awaits its callbacks (`_awaitHandler`,
 * `raiseError`, LANGCHAIN_CALLBACKS_BACKGROUND=false). The order of
 * callbacks is unchanged.
 *
 * Takes a handler (a BaseCallbackHandler, or an object of `handle*`
 * methods) or an array of them, and returns the same number of bound
 * handlers; the originals are not changed. Bind a handler once, where it is
 * made: a handler made at module level and shared by every request sees each
 * callback's own request. Throws TypeError for anything else.
 *
 * ```ts
 * const audit = bindCallbacks({
 *   handleToolStart(tool, input, runId, parentRunId, tags, metadata, runName, toolCallId) {
 *     log.info({ tenant: getRequestContext().tenantId, tool: runName, toolCallId });
 *   },
 * });
 * await withRequestContext({ tenantId, userId }, () => agent.invoke({ messages }, { callbacks: [audit] }));
 * ```
 */
export function bindCallbacks<H extends BaseCallbackHandler>(handler: H): H;
export function bindCallbacks(handler: CallbackHandlerMethods): BaseCallbackHandler;
export function bindCallbacks(handlers: readonly (BaseCallbackHandler | CallbackHandlerMethods)[]): BaseCallbackHandler[];
export function bindCallbacks(handlers: BaseCallbackHandler | CallbackHandlerMethods | readonly (BaseCallbackHandler | CallbackHandlerMethods)[]): BaseCallbackHandler | BaseCallbackHandler[] {
  if (Array.isArray(handlers)) return handlers.map((handler: unknown, index) => bindHandler(handler, `handlers[${index}]`));
  return bindHandler(handlers, 'handler');
}

function bindHandler(handler: unknown, what: string): BaseCallbackHandler {
  if (typeof handler !== 'object' || handler === null) {
    throw new TypeError(`bindCallbacks(${what}): expected a LangChain callback handler or an object of handle* methods, got ${handler === null ? 'null' : typeof handler}.`);
  }
  if ((handler as Record<symbol, unknown>)[BOUND]) return handler as BaseCallbackHandler;
  // LangChain's own test (ensureHandler): an object without a name is a bag of methods.
  const target = 'name' in handler ? (handler as BaseCallbackHandler) : BaseCallbackHandler.fromMethods(handler as CallbackHandlerMethods);
  return new Proxy(target, {
    get(inner, property) {
      // LangChain reads this where the callback happens and then calls the handler right there, in the caller's context.
      if (property === 'awaitHandlers') return true;
      if (property === BOUND) return true;
      const value: unknown = Reflect.get(inner, property, inner);
      if (typeof value !== 'function') return value;
      if (property === 'copy') return () => bindHandler(inner.copy(), what);
      if (typeof property === 'string' && property.startsWith('handle')) return inCallersRequest(inner, property, value as HandlerMethod);
      // Bound to the original: its methods may use private fields a proxy does not have.
      return (value as HandlerMethod).bind(inner);
    },
  });
}

/**
 * One callback method, called by LangChain in the context of the run that caused the callback:
 * a handler that awaits its callbacks runs right here; any other is queued as LangChain would
 * have queued it, bound to this context, so the queue's previous task no longer decides it.
 */
function inCallersRequest(handler: BaseCallbackHandler, method: string, fn: HandlerMethod): HandlerMethod {
  return (...args) => {
    if (handler.awaitHandlers) return fn.apply(handler, args);
    const run = context.bind(context.active(), () => runQueued(handler, method, fn, args));
    void consumeCallback(run, false);
    return undefined;
  };
}

/** A queued callback: its error is reported as LangChain reports one (it has no caller left to reject). */
async function runQueued(handler: BaseCallbackHandler, method: string, fn: HandlerMethod, args: unknown[]): Promise<void> {
  try {
    await fn.apply(handler, args);
  } catch (error) {
    (handler.raiseError ? console.error : console.warn)(`Error in handler ${handler.constructor.name}, ${method}: ${thrownText(error)}`);
  }
}
