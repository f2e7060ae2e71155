import type { EventEmitter } from 'node:events';
import { context } from '@opentelemetry/api';
import { REQUEST_CONTEXT_KEY } from './keys.js';
import { markWrapped, wrapEmitterListeners, wrapEventTargetListeners, type ListenerFunction } from './listener-wrappers.js';

/** An object whose listeners bindToRequest() can bind: a Node EventEmitter (streams, sockets, …) or an EventTarget (AbortSignal, …). */
export type ListenerTarget = EventEmitter | EventTarget;

// Emitters already bound: binding twice must not wrap twice. Weak: never keeps an emitter alive.
const boundTargets = new WeakSet<object>();

/**
 * Makes every listener added to `target` from now on, inside a request, run
 * as the request that added it, wherever the event is emitted (OpenTelemetry's
 * `context.bind(ctx, emitter)` and Sentry's `bindScopeToEmitter`, per
 * listener). Listeners added outside any request are left as they are.
 * Removing a listener by the function given still works. Returns `target`.
 */
export function bindListenersToRequests<T extends ListenerTarget>(target: T): T {
  if (boundTargets.has(target)) return target;
  // EventTarget first: a NodeEventTarget (MessagePort) also has on(), which adds through addEventListener.
  if (target instanceof EventTarget) wrapEventTargetListeners(target, bindToAddingRequest);
  else if (isEmitter(target)) wrapEmitterListeners(target, bindToAddingRequest);
  else if (isEventTarget(target)) wrapEventTargetListeners(target, bindToAddingRequest);
  else throw new TypeError('bindToRequest(target): target must be a function, an EventEmitter or an EventTarget.');
  boundTargets.add(target);
  return target;
}

/** The function bindToRequest(fn) returns: marked, so the callback audit knows it runs as its own request. */
export function markBoundToRequest<F extends object>(fn: F): F {
  return markWrapped(fn);
}

function bindToAddingRequest(listener: ListenerFunction): ListenerFunction | undefined {
  const active = context.active();
  if (active.getValue(REQUEST_CONTEXT_KEY) === undefined) return undefined;
  return context.bind(active, listener);
}

function isEmitter(value: unknown): value is EventEmitter {
  const candidate = value as Partial<EventEmitter> | null;
  return typeof candidate === 'object' && candidate !== null && typeof candidate.on === 'function' && typeof candidate.removeListener === 'function' && typeof candidate.emit === 'function';
}

function isEventTarget(value: unknown): value is EventTarget {
  const candidate = value as Partial<EventTarget> | null;
  return typeof candidate === 'object' && candidate !== null && typeof candidate.addEventListener === 'function' && typeof candidate.removeEventListener === 'function';
}
