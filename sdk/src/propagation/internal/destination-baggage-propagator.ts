import type { RequestOptions } from 'node:http';
import { propagation, trace, type Context, type Span, type TextMapGetter, type TextMapPropagator, type TextMapSetter } from '@opentelemetry/api';
import type * as CoreModule from '@opentelemetry/core';
import { BAGGAGE } from '../../context/internal/keys.js';
import { RequestBaggage } from '../../context/internal/request-baggage.js';
import { loadModule } from '../../tracing/internal/load-module.js';
import { reportOnce } from '../../tracing/internal/report.js';
import { nodeHttpDestination, undiciDestination, type UndiciRequestLike } from './outbound-destination.js';
import type { PropagationPolicy } from './propagation-policy.js';

// The builtin, not its ES module view: building node:http's costs tens of ms at import (it evaluates undici for its lazy exports).
const { ClientRequest } = process.getBuiltinModule('node:http');
// Loaded when a propagator is made (startTracing()): `import 'isotrace'` (a worker thread's too) does not load @opentelemetry/core.
const core = (): typeof CoreModule => loadModule('@opentelemetry/core');
type ClientRequest = InstanceType<typeof ClientRequest>;

/** What the HTTP instrumentation hands its hooks, as far as deciding on baggage needs. */
export interface HttpHooks {
  startOutgoingSpanHook(options: RequestOptions): Record<string, never>;
  requestHook(span: Span, request: unknown): void;
}

/** What the undici instrumentation hands its hook. */
export interface UndiciHooks {
  requestHook(span: Span, request: UndiciRequestLike): void;
}

/** A node:http request's options, held from its inject until its requestHook sees the ClientRequest Node made of them. */
interface PendingHttpRequest {
  options: RequestOptions;
  context: Context;
}

const clientRequestSetter: TextMapSetter<ClientRequest> = {
  set: (request, key, value) => void request.setHeader(key, value),
};

/**
 * W3C baggage that only travels to allowed destinations, decided per request
 * on where the request really goes (see outbound-destination.ts) and only
 * through isotrace's own HTTP and undici instrumentation hooks:
 *
 * - undici (fetch): requestHook records the dispatched request's destination
 *   for its CLIENT span; the inject that follows for that span (once) writes
 *   baggage when the destination is allowed. Each redirect hop is a new
 *   dispatched request and is decided again.
 * - node:http: inject runs before Node builds the request, so it writes no
 *   baggage; it links the request options (its carrier is their `headers`)
 *   to the CLIENT span, and requestHook, given the real ClientRequest, sets
 *   the header when what Node connects to is allowed.
 *
 * Every other inject — a hand-written `propagation.inject()`, another
 * library's instrumentation — gets no baggage: failing closed is the point.
 * traceparent is not affected.
 */
export class DestinationBaggagePropagator implements TextMapPropagator {
  readonly #inner = new (core().W3CBaggagePropagator)();
  readonly #policy: PropagationPolicy;
  /** undici: a CLIENT span's destination, from its requestHook to the one inject that follows. */
  readonly #undiciDestinations = new WeakMap<Span, URL | undefined>();
  /** node:http: the options startOutgoingSpanHook saw, until the inject of the same request claims them (same synchronous call). */
  #optionsAwaitingInject: RequestOptions | undefined;
  readonly #httpRequests = new WeakMap<Span, PendingHttpRequest>();

  constructor(policy: PropagationPolicy) {
    this.#policy = policy;
  }

  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    if (!this.#policy.allowsAny) return;
    const span = trace.getSpan(ctx);
    const options = this.#optionsAwaitingInject;
    this.#optionsAwaitingInject = undefined;
    if (!span) return;
    if (this.#undiciDestinations.has(span)) {
      const destination = this.#undiciDestinations.get(span);
      this.#undiciDestinations.delete(span);
      if (destination && this.#policy.allows(destination)) this.#inner.inject(identityFirst(ctx), carrier, setter);
      return;
    }
    // The instrumentation injects into a fresh `options.headers`: only that carrier proves the options are this request's.
    if (options && options.headers === carrier) this.#httpRequests.set(span, { options, context: ctx });
  }

  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    return this.#inner.extract(ctx, carrier, getter);
  }

  fields(): string[] {
    return this.#inner.fields();
  }

  /** Hooks for UndiciInstrumentation: requestHook runs before its inject. */
  undiciHooks(): UndiciHooks {
    return {
      requestHook: (span, request) => {
        if (this.#policy.allowsAny) this.#undiciDestinations.set(span, undiciDestination(request));
      },
    };
  }

  /** Hooks for HttpInstrumentation: startOutgoingSpanHook runs before inject, requestHook after Node made the request. */
  httpHooks(): HttpHooks {
    return {
      startOutgoingSpanHook: (options) => {
        if (this.#policy.allowsAny) this.#optionsAwaitingInject = options;
        return {};
      },
      requestHook: (span, request) => {
        if (request instanceof ClientRequest) this.#decideNodeHttp(span, request);
      },
    };
  }

  #decideNodeHttp(span: Span, request: ClientRequest): void {
    const pending = this.#httpRequests.get(span);
    if (!pending) return;
    this.#httpRequests.delete(span);
    const destination = nodeHttpDestination(request, pending.options);
    if (!destination || !this.#policy.allows(destination)) return;
    if (request.headersSent) {
      // An `Expect` header or raw header array makes Node write the head at once: too late to add baggage.
      reportOnce('baggage-headers-sent', `no baggage sent to ${destination.origin}: the request headers were already written when the request was created.`);
      return;
    }
    try {
      this.#inner.inject(identityFirst(pending.context), request, clientRequestSetter);
    } catch (error) {
      reportOnce('baggage-set-failed', `no baggage sent to ${destination.origin}: setting the header failed.`, error);
    }
  }
}

/** The process-wide propagator: traceparent/tracestate everywhere, baggage per destination. */
export function outboundPropagator(baggage: DestinationBaggagePropagator): TextMapPropagator {
  const { CompositePropagator, W3CTraceContextPropagator } = core();
  return new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), baggage] });
}

const IDENTITY_KEYS: ReadonlySet<string> = new Set(Object.values(BAGGAGE));
const isIdentity = ([key]: [string, unknown]): boolean => IDENTITY_KEYS.has(key);

/**
 * The W3C propagator drops members from the end once the header would pass
 * 180 members or 8 KiB. A trusted peer's baggage comes before isotrace's
 * identity entries, so a large one would push the identity out: move it first.
 */
export function identityFirst(ctx: Context): Context {
  const baggage = propagation.getBaggage(ctx);
  // A request's own identity baggage holds nothing else: already in order, read from the request as it is written.
  if (!baggage || baggage instanceof RequestBaggage) return ctx;
  const entries = baggage.getAllEntries();
  const firstOther = entries.findIndex((entry) => !isIdentity(entry));
  if (firstOther === -1 || entries.findLastIndex(isIdentity) < firstOther) return ctx;
  let ordered = propagation.createBaggage(Object.fromEntries(entries.filter(isIdentity)));
  for (const [key, entry] of entries) if (!IDENTITY_KEYS.has(key)) ordered = ordered.setEntry(key, entry);
  return propagation.setBaggage(ctx, ordered);
}
