import { auditOwner } from '../../audit/internal/runtime-audit.js';
import type { RequestContextImpl } from '../../context/internal/request-context.js';
import { tryGetRequestContext } from '../../context/internal/request-scope.js';
import type { RequestContext } from '../../context/types.js';
import { RequestContextMissingError } from '../../errors/errors.js';
import { emitAs } from '../../events/internal/emit.js';
import type { ProgressEvent } from '../../events/types.js';
import type { SharedState } from '../../shared-state/types.js';
import type { ToolCall, ToolType } from '../types.js';

/** Set by Tool's static block: the only way in to an instance's private owner. */
let bindOwner: (tool: Tool, owner: RequestContextImpl) => boolean;

/**
 * Base class of a tool. Subclass it, name it with `static toolName`, and
 * implement `run(args, call)`. Instances are created per request by
 * createToolSystem(), which binds its own request to each one right after
 * construction: inside `run`, `this.context` is that owning request and
 * `this.sharedState` the active request's SharedState (the seeds'
 * `self._shared_state`), both audited against the owner; `call` holds the
 * call id and the AbortSignal (see ToolCall).
 *
 * A tool may take constructor arguments: give createToolSystem() a factory,
 * `() => new Search('products')`, instead of the class. The owner is bound
 * after the constructor returns, so read `this.context` in `run`, not in the
 * constructor or a field initializer. An instance constructed by hand (never
 * given to a tool system) has no owner: reading `this.context` or
 * `this.sharedState` throws RequestContextMissingError, even inside a request.
 *
 * ```ts
 * class Search extends Tool<{ q: string }, string[]> {
 *   static toolName = 'search';
 *   static description = 'Searches the tenant catalogue';
 *   async run({ q }) { return (await this.sharedState.get<string[]>('catalogue'))?.filter((s) => s.includes(q)) ?? []; }
 * }
 * ```
 */
export abstract class Tool<Args = unknown, Result = unknown> {
  static toolName: string;
  static description = '';
  static type: ToolType = 'function';

  #owner: RequestContextImpl | undefined;

  static {
    bindOwner = (tool, owner) => {
      if (tool.#owner) return false;
      tool.#owner = owner;
      return true;
    };
  }

  /** Runs the tool; called by the dispatcher inside its span. */
  abstract run(args: Args, call: ToolCall): Result | Promise<Result>;

  /**
   * The request this instance belongs to. Throws RequestContextMissingError
   * for an instance no tool system owns; using it from another request
   * records a `context-owner` violation.
   */
  protected get context(): RequestContext {
    const owner = this.#ownerOrThrow('context');
    auditOwner(owner);
    return owner;
  }

  /**
   * The active request's SharedState. Throws RequestContextMissingError for an
   * instance no tool system owns, or when no request is bound; records a
   * `context-owner` violation when the active request is not this instance's owner.
   */
  protected get sharedState(): SharedState {
    const owner = this.#ownerOrThrow('sharedState');
    const active = tryGetRequestContext();
    if (!active) throw new RequestContextMissingError(`${this.constructor.name}.sharedState`);
    auditOwner(owner);
    return active.sharedState;
  }

  /**
   * Sends a progress event to the owning request's own connection (its
   * WebSocket or server-sent-events response): see emitProgress(). Returns
   * false when it was not delivered. Throws RequestContextMissingError for an
   * instance no tool system owns and TypeError for an event that is not a
   * JSON object; used from another request, the event is refused with an
   * `event-owner` violation.
   *
   * ```ts
   * async run({ q }) { this.emit({ type: 'searching', q }); … }
   * ```
   */
  protected emit(event: ProgressEvent): boolean {
    return emitAs(this.#ownerOrThrow('emit'), event, `${this.constructor.name}.emit(event)`);
  }

  // Fails closed: an unowned instance must not fall back to whatever request happens to be active.
  #ownerOrThrow(field: string): RequestContextImpl {
    if (this.#owner) return this.#owner;
    throw new RequestContextMissingError(
      `${this.constructor.name}.${field} (this tool instance belongs to no tool system: create tools through createToolSystem(), ` +
        `e.g. createToolSystem([${this.constructor.name}]) or createToolSystem([() => new ${this.constructor.name}(…)]), and read ${field} in run(), not in the constructor)`,
    );
  }
}

/** Makes `owner` the request of a fresh tool instance; false when the instance already has one. */
export function bindToolOwner(tool: Tool, owner: RequestContextImpl): boolean {
  return bindOwner(tool, owner);
}
