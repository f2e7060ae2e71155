import type { SharedState } from '../shared-state/types.js';

/**
 * The request-scoped values a RequestContext can hold. Augment it to type your
 * keys (the index signature keeps other keys usable as `unknown`):
 *
 * ```ts
 * declare module 'isotrace' {
 *   interface RequestContextValues { plan: string }
 * }
 * ```
 */
export interface RequestContextValues {
  [key: string]: unknown;
}

/** A key of RequestContextValues. */
export type ValueKey = keyof RequestContextValues & string;

/** What a request is: who it is for and how it is traced. */
export interface RequestContextInit {
  /** The tenant the request acts for (from your auth, never from inbound baggage). */
  tenantId: string;
  /** The user the request acts for. */
  userId: string;
  /** An optional job or run id (exposed as `${JOB_ID}`). */
  jobId?: string;
  /** Defaults to a fresh UUID. */
  requestId?: string;
  /** Defaults to the enclosing request's, else a trusted inbound one, else the request id. */
  correlationId?: string;
  /** Initial request-scoped values. */
  values?: Partial<RequestContextValues>;
  /** The request span's name; default `request`. */
  name?: string;
  /**
   * The conversation (chat session, thread) this request belongs to, when the
   * app has one: `gen_ai.conversation.id` on the request span and on the
   * request's agent and tool spans. Never generated.
   */
  conversationId?: string;
}

/**
 * One request's context: identity, trace and request-scoped values. Bound to
 * the OpenTelemetry context by withRequestContext() and visible only to code
 * running for that request.
 */
export interface RequestContext {
  readonly requestId: string;
  readonly correlationId: string;
  readonly tenantId: string;
  readonly userId: string;
  readonly jobId: string | undefined;
  /** The init's `conversationId` (`gen_ai.conversation.id`), or undefined: never made up. */
  readonly conversationId?: string | undefined;
  /** The trace id of the request span (32 hex). */
  readonly traceId: string;
  /** This request's tenant/user SharedState. */
  readonly sharedState: SharedState;
  /** A request-scoped value, or undefined. */
  get<K extends ValueKey>(key: K): RequestContextValues[K] | undefined;
  /** Sets a request-scoped value; visible to this request only. */
  set<K extends ValueKey>(key: K, value: RequestContextValues[K]): void;
  /** A copy of all request-scoped values. */
  values(): Partial<RequestContextValues>;
}

/** A structured-clone-safe copy of a RequestContext, for crossing threads and processes. */
export interface RequestContextSnapshot {
  requestId: string;
  correlationId: string;
  tenantId: string;
  userId: string;
  jobId?: string;
  traceId: string;
  values: Record<string, unknown>;
}
