import { ScopedSharedState, type SharedStateAccessHook } from '../../shared-state/internal/shared-state.js';
import type { SharedState, SharedStateStore } from '../../shared-state/types.js';
import type { Runtime } from '../../tracing/internal/runtime.js';
import type { RequestContext, RequestContextSnapshot, RequestContextValues, ValueKey } from '../types.js';

/** The identity part of a request context. */
export interface RequestIdentity {
  requestId: string;
  correlationId: string;
  tenantId: string;
  userId: string;
  jobId: string | undefined;
  traceId: string;
  /** `gen_ai.conversation.id` when the app gave one (not carried into snapshots). */
  conversationId?: string | undefined;
}

/** The RequestContext bound by withRequestContext(); one instance per request. */
export class RequestContextImpl implements RequestContext {
  readonly requestId: string;
  readonly correlationId: string;
  readonly tenantId: string;
  readonly userId: string;
  readonly jobId: string | undefined;
  readonly traceId: string;
  readonly conversationId: string | undefined;
  /**
   * The isotrace runtime the request was started under: code acting for the
   * request (tools, SharedState, workers) uses it, so a request keeps its
   * runtime across a shutdown and restart. Absent for a context rebuilt from a
   * snapshot in a worker or child process: that uses its own thread's runtime.
   */
  readonly runtime: Runtime | undefined;
  /** Made on the first value: most requests carry none. */
  #values: Map<string, unknown> | undefined;
  readonly #store: SharedStateStore;
  readonly #onSharedStateAccess: SharedStateAccessHook | undefined;
  #sharedState: SharedState | undefined;
  #toolSystems = 0;

  constructor(identity: RequestIdentity, values: Iterable<[string, unknown]> | undefined, store: SharedStateStore, onSharedStateAccess?: SharedStateAccessHook, runtime?: Runtime) {
    this.requestId = identity.requestId;
    this.correlationId = identity.correlationId;
    this.tenantId = identity.tenantId;
    this.userId = identity.userId;
    this.jobId = identity.jobId;
    this.traceId = identity.traceId;
    this.conversationId = identity.conversationId;
    this.#values = values === undefined ? undefined : new Map(values);
    this.#store = store;
    this.#onSharedStateAccess = onSharedStateAccess;
    this.runtime = runtime;
  }

  get sharedState(): SharedState {
    // Created on first use: most requests never touch SharedState.
    this.#sharedState ??= new ScopedSharedState(this.#store, { tenantId: this.tenantId, userId: this.userId }, this.#onSharedStateAccess);
    return this.#sharedState;
  }

  get<K extends ValueKey>(key: K): RequestContextValues[K] | undefined {
    return this.#values?.get(key) as RequestContextValues[K] | undefined;
  }

  set<K extends ValueKey>(key: K, value: RequestContextValues[K]): void {
    if (typeof key !== 'string') throw new TypeError(`Request context keys are strings; got ${typeof key}.`);
    (this.#values ??= new Map()).set(key, value);
  }

  values(): Partial<RequestContextValues> {
    return this.#values ? Object.fromEntries(this.#values) : {};
  }

  /** The values as they are, not copied (undefined when there are none yet): for isotrace code that only reads them. */
  get valueMap(): ReadonlyMap<string, unknown> | undefined {
    return this.#values;
  }

  /** Numbers this request's tool systems: 1, 2, … (part of their registry id). */
  nextToolSystemNumber(): number {
    return ++this.#toolSystems;
  }

  /** A structured-clone-safe copy for workers and child processes. */
  toSnapshot(): RequestContextSnapshot {
    return {
      requestId: this.requestId,
      correlationId: this.correlationId,
      tenantId: this.tenantId,
      userId: this.userId,
      ...(this.jobId === undefined ? {} : { jobId: this.jobId }),
      traceId: this.traceId,
      values: this.#values ? Object.fromEntries(this.#values) : {},
    };
  }

  /** Rebuilds a request context from a snapshot taken in another thread or process. */
  static fromSnapshot(snapshot: RequestContextSnapshot, store: SharedStateStore, onSharedStateAccess?: SharedStateAccessHook): RequestContextImpl {
    const { requestId, correlationId, tenantId, userId, jobId, traceId } = snapshot;
    return new RequestContextImpl({ requestId, correlationId, tenantId, userId, jobId, traceId }, Object.entries(snapshot.values ?? {}), store, onSharedStateAccess);
  }

  toJSON(): RequestIdentity {
    return { requestId: this.requestId, correlationId: this.correlationId, tenantId: this.tenantId, userId: this.userId, jobId: this.jobId, traceId: this.traceId };
  }
}
