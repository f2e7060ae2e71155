import { INVALID_SPAN_CONTEXT, propagation, trace, type Context } from '@opentelemetry/api';
import { REQUEST_CONTEXT_KEY } from './keys.js';

/** A well-known entry this scope does not set: it reads through to the parent. */
const UNSET: unique symbol = Symbol('isotrace.unset');

/**
 * An OpenTelemetry Context: a request scope's own entries over the context it
 * was entered from. It behaves as the API's context does (immutable; set and
 * delete return a new context; a missing key reads as undefined), for less:
 * the API's context copies every entry of its parent on every setValue() and
 * makes three closures per context. Here the parent is shared, not copied.
 * The three entries a request scope sets (its span, request context and
 * baggage) are fields, and so is the span every tool call and outbound call
 * sets again: setting one copies three fields, not a map. Other keys live in
 * a map that is copied only when one of them changes.
 */
export class ScopeContext implements Context {
  readonly #parent: Context;
  readonly #span: unknown;
  readonly #request: unknown;
  readonly #baggage: unknown;
  /** Other entries set in this scope; a deleted key is held as undefined so it hides the parent's. Never changed once made. */
  readonly #others: ReadonlyMap<symbol, unknown> | undefined;

  private constructor(parent: Context, span: unknown, request: unknown, baggage: unknown, others: ReadonlyMap<symbol, unknown> | undefined) {
    this.#parent = parent;
    this.#span = span;
    this.#request = request;
    this.#baggage = baggage;
    this.#others = others;
  }

  /** A request's scope over `parent`: its span, request context and baggage. */
  static forRequest(parent: Context, span: unknown, request: unknown, baggage: unknown): ScopeContext {
    // Always one level over a context of another kind: nested scopes never make a chain to walk.
    if (parent instanceof ScopeContext) return new ScopeContext(parent.#parent, span, request, baggage, parent.#others);
    return new ScopeContext(parent, span, request, baggage, undefined);
  }

  getValue(key: symbol): unknown {
    const own = key === SPAN_KEY ? this.#span : key === REQUEST_CONTEXT_KEY ? this.#request : key === BAGGAGE_KEY ? this.#baggage : this.#other(key);
    return own === UNSET ? this.#parent.getValue(key) : own;
  }

  setValue(key: symbol, value: unknown): Context {
    if (key === SPAN_KEY) return new ScopeContext(this.#parent, value, this.#request, this.#baggage, this.#others);
    if (key === REQUEST_CONTEXT_KEY) return new ScopeContext(this.#parent, this.#span, value, this.#baggage, this.#others);
    if (key === BAGGAGE_KEY) return new ScopeContext(this.#parent, this.#span, this.#request, value, this.#others);
    const others = new Map(this.#others);
    others.set(key, value);
    return new ScopeContext(this.#parent, this.#span, this.#request, this.#baggage, others);
  }

  deleteValue(key: symbol): Context {
    return this.setValue(key, undefined);
  }

  #other(key: symbol): unknown {
    const others = this.#others;
    if (others === undefined) return UNSET;
    const value = others.get(key);
    return value !== undefined || others.has(key) ? value : UNSET;
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
