import { ROOT_CONTEXT, type Context } from '@opentelemetry/api';

/** Past this many links, setValue() goes on with the API's own context: lookups stay short whatever the task does. */
const MAX_LINKS = 16;
const DELETED = Symbol('deleted');

class LinkedContext implements Context {
  readonly #parent: LinkedContext | undefined;
  readonly #key: symbol | undefined;
  readonly #value: unknown;
  readonly #links: number;
  /** The same entries in the API's context, made once, at the first step past MAX_LINKS. */
  #handover: Context | undefined;

  constructor(parent: LinkedContext | undefined, key: symbol | undefined, value: unknown, links: number) {
    this.#parent = parent;
    this.#key = key;
    this.#value = value;
    this.#links = links;
  }

  getValue(key: symbol): unknown {
    return LinkedContext.#lookup(this, key);
  }

  setValue(key: symbol, value: unknown): Context {
    return this.#links < MAX_LINKS ? new LinkedContext(this, key, value, this.#links + 1) : this.#handedOver().setValue(key, value);
  }

  deleteValue(key: symbol): Context {
    return this.#links < MAX_LINKS ? new LinkedContext(this, key, DELETED, this.#links + 1) : this.#handedOver().deleteValue(key);
  }

  #handedOver(): Context {
    this.#handover ??= LinkedContext.#asApiContext(this);
    return this.#handover;
  }

  static #lookup(newest: LinkedContext, key: symbol): unknown {
    for (let link: LinkedContext | undefined = newest; link !== undefined; link = link.#parent) {
      if (link.#key === key) return link.#value === DELETED ? undefined : link.#value;
    }
    return undefined;
  }

  /** The API's context with the entries of the chain ending at `newest`, applied oldest first. */
  static #asApiContext(newest: LinkedContext): Context {
    const links: LinkedContext[] = [];
    for (let link: LinkedContext | undefined = newest; link !== undefined && link.#key !== undefined; link = link.#parent) links.push(link);
    let ctx = ROOT_CONTEXT;
    for (const link of links.reverse()) ctx = link.#value === DELETED ? ctx.deleteValue(link.#key!) : ctx.setValue(link.#key!, link.#value);
    return ctx;
  }
}

/**
 * The empty context a worker task's context is built on: an OpenTelemetry
 * context as a chain of links, where setValue() adds one link instead of
 * copying a map as the API's own context does. A task's context takes four
 * steps (remote parent span, baggage, request context, the task's span); as
 * copied maps, each with its closures, they cost more than the rest of the
 * task's set-up. Past MAX_LINKS links the chain hands over to the API's
 * context holding the same entries, so a task that keeps deriving contexts
 * never makes lookups walk a long chain.
 */
export const TASK_ROOT: Context = new LinkedContext(undefined, undefined, undefined, 0);
