import { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import { context, createContextKey, trace, type Context } from '@opentelemetry/api';
import { requestContextOf } from '../../context/internal/active-request.js';
import { wrapEmitterListeners, wrapEventTargetListeners, type ListenerFunction } from '../../context/internal/listener-wrappers.js';
import type { CallbackAuditOptions } from '../../tracing/types.js';
import { processState } from '../../tracing/internal/runtime.js';
import { describeRequest, recordViolation } from './runtime-audit.js';

// The builtin, not its ES module view: building node:http's costs tens of ms at import (it evaluates undici for its lazy exports).
const { Agent } = process.getBuiltinModule('node:http');

/** @opentelemetry/core's suppressTracing() key (context keys are Symbol.for(name): one in every copy), without loading core at import. */
const SUPPRESS_TRACING_KEY = createContextKey('OpenTelemetry SDK Context Key SUPPRESS_TRACING');
const isTracingSuppressed = (ctx: Context): boolean => ctx.getValue(SUPPRESS_TRACING_KEY) === true;

/** Span event attribute: where the listener was added (the test kit keeps registration stacks). */
export const REGISTERED_AT = 'isotrace.audit.registered_at';

/** The callback audit as startTracing() runs it. */
export interface CallbackAuditSettings {
  /** Share of listeners added inside requests that are wrapped and checked, 0–1. */
  readonly sampleRate: number;
  /** Keep where each checked listener was added, for the violation event. */
  readonly stacks: boolean;
}

/** The request that added a listener: three strings, so a long-lived listener never keeps the request's values alive. */
interface ListenerOwner {
  readonly requestId: string;
  readonly tenantId: string;
  readonly userId: string;
}


/**
 * Starts the `callback-owner` check when `option` asks for it: every listener
 * added inside a request (EventEmitter on/addListener/once/prepend…, and
 * EventTarget addEventListener, AbortSignal included) remembers that request,
 * and one that runs inside a different request records a violation on the
 * active span. Returns what stops it (runs once); listeners added while it ran
 * stay wrapped but check nothing once it is stopped.
 */
export function startCallbackAudit(option: boolean | CallbackAuditOptions | undefined): () => void {
  const chosen = settingsOf(option);
  if (!chosen) return () => undefined;
  // Process-wide like the prototype methods it governs (one patch, whichever copy of isotrace made it).
  const state = processState();
  const running = { settings: chosen, unpatch: state.callbackAudit?.unpatch ?? patchListenerMethods() };
  state.callbackAudit = running;
  return () => {
    // Only this run's: a stale stop after a restart must not switch off the new run.
    if (state.callbackAudit !== running) return;
    state.callbackAudit = undefined;
    running.unpatch();
  };
}

function settingsOf(option: boolean | CallbackAuditOptions | undefined): CallbackAuditSettings | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return { sampleRate: 1, stacks: false };
  return { sampleRate: option.sampleRate ?? 1, stacks: option.stacks ?? false };
}

function patchListenerMethods(): () => void {
  const restoreEmitters = wrapEmitterListeners(EventEmitter.prototype, ownedListener);
  const restoreTargets = wrapEventTargetListeners(EventTarget.prototype, ownedListener);
  return () => {
    restoreEmitters();
    restoreTargets();
  };
}

/** The checking wrapper for a listener added inside a request (sampled), or undefined: outside requests nothing is done. */
function ownedListener(listener: ListenerFunction, emitter: object): ListenerFunction | undefined {
  const on = processState().callbackAudit?.settings;
  if (!on) return undefined;
  const active = context.active();
  const request = requestContextOf(active);
  // Exports (OpenTelemetry runs them with tracing suppressed) reuse pooled sockets across requests by design.
  if (!request || isTracingSuppressed(active) || isConnectionPool(emitter)) return undefined;
  if (on.sampleRate < 1 && Math.random() >= on.sampleRate) return undefined;
  const owner: ListenerOwner = { requestId: request.requestId, tenantId: request.tenantId, userId: request.userId };
  const registeredAt = on.stacks ? registrationStack() : undefined;
  return function (this: unknown, ...args: unknown[]): unknown {
    checkCallbackOwner(owner, registeredAt);
    return listener.apply(this, args);
  };
}

/**
 * Connections and their pools are shared by requests by design: a keep-alive
 * socket (and the http.Agent that pools it) or an undici dispatcher behind
 * fetch (Agent, Pool, Client) gets listeners from Node's HTTP machinery in
 * whichever request first opens it, and emits them in the requests that reuse
 * it. Those listeners are the pool's, not the application's: not checked.
 */
function isConnectionPool(emitter: object): boolean {
  if (emitter instanceof Socket || emitter instanceof Agent) return true;
  const dispatcher = undiciDispatcher();
  return dispatcher !== undefined && Object.prototype.isPrototypeOf.call(dispatcher, emitter);
}

const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');

/** undici's Dispatcher.prototype (below EventEmitter.prototype in fetch's global dispatcher), once fetch has made one. */
function undiciDispatcher(): object | undefined {
  let proto: object | null = (globalThis as Record<symbol, object | undefined>)[GLOBAL_DISPATCHER] ?? null;
  while (proto && Object.getPrototypeOf(proto) !== EventEmitter.prototype) proto = Object.getPrototypeOf(proto) as object | null;
  return proto ?? undefined;
}

/**
 * The `callback-owner` check as a listener starts: it must run inside the
 * request that added it, or outside every request (an app-wide timer or
 * socket emitting it is not another request).
 */
function checkCallbackOwner(owner: ListenerOwner, registeredAt: string | undefined): void {
  if (!processState().callbackAudit) return;
  const active = context.active();
  const request = requestContextOf(active);
  if (!request || request.requestId === owner.requestId) return;
  recordViolation(trace.getSpan(active), 'callback-owner', describeRequest(owner), describeRequest(request), registeredAt === undefined ? undefined : { [REGISTERED_AT]: registeredAt });
}

// isotrace's frames, as built (dist/…/x.js) or source-mapped (sdk/src/…/x.ts).
const OWN_FRAMES = [/[\\/]audit[\\/]internal[\\/]callback-audit\.[jt]s:/, /[\\/]context[\\/]internal[\\/]listener-wrappers\.[jt]s:/];

/** Where the listener is being added: the stack without isotrace's own frames. */
function registrationStack(): string {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 24;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  return stack
    .split('\n')
    .slice(1)
    .filter((line) => !OWN_FRAMES.some((own) => own.test(line)))
    .slice(0, 12)
    .map((line) => line.trim())
    .join('\n');
}
