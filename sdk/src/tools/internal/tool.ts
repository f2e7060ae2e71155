import { context, createContextKey } from '@opentelemetry/api';
import { auditOwner } from '../../audit/internal/runtime-audit.js';
import type { RequestContextImpl } from '../../context/internal/request-context.js';
import { tryGetRequestContext } from '../../context/internal/request-scope.js';
import type { RequestContext } from '../../context/types.js';
import { RequestContextMissingError } from '../../errors/errors.js';
import type { SharedState } from '../../shared-state/types.js';
import type { ToolClass, ToolInfo, ToolType } from '../types.js';

/** Set while createToolSystem() constructs tools, so each instance learns its owning request. */
export const OWNER_KEY = createContextKey('isotrace.tool_owner');

/**
 * Base class of a tool. Subclass it, name it with `static toolName`, and
 * implement `run`. Instances are created per request by createToolSystem();
 * inside `run`, `this.context` is the owning request and `this.sharedState`
 * the active request's SharedState (the seeds' `self._shared_state`), both
 * audited against the owner.
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

  readonly #owner: RequestContextImpl | undefined = context.active().getValue(OWNER_KEY) as RequestContextImpl | undefined;

  /** Runs the tool; called by the dispatcher inside its span. */
  abstract run(args: Args): Result | Promise<Result>;

  /**
   * The request this instance belongs to. Throws RequestContextMissingError
   * for an instance made outside createToolSystem(); using it from another
   * request records a `context-owner` violation.
   */
  protected get context(): RequestContext {
    if (!this.#owner) throw new RequestContextMissingError(`${this.constructor.name}.context (create tools with createToolSystem())`);
    auditOwner(this.#owner);
    return this.#owner;
  }

  /**
   * The active request's SharedState. Throws RequestContextMissingError when
   * no request is bound; records a `context-owner` violation when the active
   * request is not this instance's owner.
   */
  protected get sharedState(): SharedState {
    const active = tryGetRequestContext();
    if (!active) throw new RequestContextMissingError(`${this.constructor.name}.sharedState`);
    if (this.#owner) auditOwner(this.#owner);
    return active.sharedState;
  }
}

/** What a tool instance's class says about it. */
export function infoOf(tool: Tool): ToolInfo {
  const ToolClass = tool.constructor as ToolClass;
  return { name: ToolClass.toolName, description: ToolClass.description ?? '', type: ToolClass.type ?? 'function' };
}
