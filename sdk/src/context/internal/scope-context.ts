import { INVALID_SPAN_CONTEXT, propagation, trace, type Context } from '@opentelemetry/api';

/**
 * An OpenTelemetry Context: the request scope's own entries over the context
 * it was entered from. It behaves as the API's context does (immutable; set
 * and delete return a new context; a missing key reads as undefined), for
 * less: the API's context copies every entry of its parent on every
 * setValue() and makes three closures per context, and a request scope sets
 * three values (its span, its request context, its baggage) at once and more
 * after (every tool call and outbound call sets its span). Here the parent is
 * shared, not copied, and only the scope's own few entries are.
 */
export class ScopeContext implements Context {
  readonly #parent: Context;
  /** Entries set in this scope; a deleted key is held as undefined so it hides the parent's. */
  readonly #own: Map<symbol, unknown>;

  constructor(parent: Context, own: Map<symbol, unknown>) {
    // Always one level over a context of another kind: nested scopes never make a chain to walk.
    if (parent instanceof ScopeContext) {
      this.#parent = parent.#parent;
      this.#own = new Map(parent.#own);
      for (const [key, value] of own) this.#own.set(key, value);
    } else {
      this.#parent = parent;
      this.#own = own;
    }
  }

  getValue(key: symbol): unknown {
    const value = this.#own.get(key);
    if (value !== undefined || this.#own.has(key)) return value;
    return this.#parent.getValue(key);
  }

  setValue(key: symbol, value: unknown): Context {
    const own = new Map(this.#own);
    own.set(key, value);
    return new ScopeContext(this.#parent, own);
  }

  deleteValue(key: symbol): Context {
    const own = new Map(this.#own);
    own.set(key, undefined);
    return new ScopeContext(this.#parent, own);
  }
}

/** Records the key the OpenTelemetry API sets a value under (its span and baggage keys are not exported). */
class KeyProbe implements Context {
  key: symbol | undefined;

  getValue(): unknown {
    return undefined;
  }

  setValue(key: symbol): Context {
    this.key = key;
    return this;
  }

  deleteValue(): Context {
    return this;
  }
}

function keyOf(set: (ctx: Context) => Context): symbol {
  const probe = new KeyProbe();
  set(probe);
  return probe.key!;
}

/** The key trace.setSpan() sets the active span under, asked of the API itself. */
export const SPAN_KEY: symbol = keyOf((ctx) => trace.setSpan(ctx, trace.wrapSpanContext(INVALID_SPAN_CONTEXT)));

/** The key propagation.setBaggage() sets baggage under, asked of the API itself. */
export const BAGGAGE_KEY: symbol = keyOf((ctx) => propagation.setBaggage(ctx, propagation.createBaggage()));
