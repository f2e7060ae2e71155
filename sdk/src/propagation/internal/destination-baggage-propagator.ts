import { propagation, SpanKind, trace, type Context, type Span, type TextMapGetter, type TextMapPropagator, type TextMapSetter } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { BAGGAGE } from '../../context/internal/keys.js';
import type { PropagationTarget } from '../../tracing/types.js';

/**
 * W3C baggage that only travels to allowed destinations. The HTTP and undici
 * instrumentations inject from inside their CLIENT span, whose `url.full` /
 * `server.address` say where the request goes; baggage is written only when
 * that destination matches `propagateTo`. Anything else (an unknown or
 * unsampled destination, a caller without a client span) gets no baggage:
 * failing closed is the point. traceparent is not affected.
 */
export class DestinationBaggagePropagator implements TextMapPropagator {
  readonly #inner = new W3CBaggagePropagator();
  readonly #targets: readonly PropagationTarget[];

  constructor(targets: readonly PropagationTarget[]) {
    this.#targets = targets;
  }

  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    if (this.#targets.length === 0) return;
    const destination = destinationOf(trace.getSpan(ctx));
    if (destination && this.#targets.some((target) => matches(target, destination))) this.#inner.inject(identityFirst(ctx), carrier, setter);
  }

  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    return this.#inner.extract(ctx, carrier, getter);
  }

  fields(): string[] {
    return this.#inner.fields();
  }
}

/** The process-wide propagator: traceparent/tracestate everywhere, baggage per destination. */
export function outboundPropagator(targets: readonly PropagationTarget[]): TextMapPropagator {
  return new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new DestinationBaggagePropagator(targets)] });
}

/** Both W3C propagators, unfiltered: for isotrace's own in-process hops (worker threads, child processes). */
export const internalPropagator: TextMapPropagator = new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] });

const IDENTITY_KEYS: ReadonlySet<string> = new Set(Object.values(BAGGAGE));
const isIdentity = ([key]: [string, unknown]): boolean => IDENTITY_KEYS.has(key);

/**
 * The W3C propagator drops members from the end once the header would pass
 * 180 members or 8 KiB. A trusted peer's baggage comes before isotrace's
 * identity entries, so a large one would push the identity out: move it first.
 */
function identityFirst(ctx: Context): Context {
  const baggage = propagation.getBaggage(ctx);
  if (!baggage) return ctx;
  const entries = baggage.getAllEntries();
  const firstOther = entries.findIndex((entry) => !isIdentity(entry));
  if (firstOther === -1 || entries.findLastIndex(isIdentity) < firstOther) return ctx;
  let ordered = propagation.createBaggage(Object.fromEntries(entries.filter(isIdentity)));
  for (const [key, entry] of entries) if (!IDENTITY_KEYS.has(key)) ordered = ordered.setEntry(key, entry);
  return propagation.setBaggage(ctx, ordered);
}

/** Where a CLIENT span's request goes, from its semantic-convention attributes. */
function destinationOf(span: Span | undefined): URL | undefined {
  const recorded = span as (Span & { kind?: SpanKind; attributes?: Record<string, unknown> }) | undefined;
  if (!recorded?.attributes || recorded.kind !== SpanKind.CLIENT) return undefined;
  const { attributes } = recorded;
  const full = attributes['url.full'];
  if (typeof full === 'string' && URL.canParse(full)) return new URL(full);
  const host = attributes['server.address'];
  if (typeof host !== 'string') return undefined;
  const port = attributes['server.port'];
  const candidate = `http://${host.includes(':') ? `[${host}]` : host}${port === undefined ? '' : `:${String(port)}`}/`;
  return URL.canParse(candidate) ? new URL(candidate) : undefined;
}

/** A host (`api.internal`, `api.internal:8443`), a URL prefix, a RegExp over the URL, or a predicate. */
export function matches(target: PropagationTarget, url: URL): boolean {
  if (typeof target === 'function') {
    try {
      return target(url) === true;
    } catch {
      return false;
    }
  }
  // search(), not test(): a /g or /y RegExp's lastIndex would make test() alternate between calls.
  if (target instanceof RegExp) return url.href.search(target) !== -1;
  if (target.includes('://')) return matchesPrefix(target, url);
  // Hosts compare case-insensitively; a bare IPv6 target (`::1`) matches `[::1]`.
  const wanted = target.toLowerCase();
  return wanted === url.host || wanted === url.hostname || wanted === url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** A URL prefix never reaches past its own origin: `http://api:1234` must not match `http://api:12345/` or `http://api.evil/`. */
function matchesPrefix(prefix: string, url: URL): boolean {
  if (!URL.canParse(prefix)) return false;
  const base = new URL(prefix);
  return url.origin === base.origin && url.href.startsWith(base.href);
}
