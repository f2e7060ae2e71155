import { createTraceState, type Attributes, type HrTime, type Link, type SpanContext, type SpanKind, type SpanStatus } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';

/**
 * A finished span as the export thread reads it back from a span batch
 * (span-batch.ts writes these fields in this order): one flat array of what
 * OTLP carries, its resource and instrumentation scope as numbers that name
 * definitions sent once (CompactDefinitions). Links and events travel only
 * when there are some. The same idea as the worker pool's
 * SpanData (workers/internal/span-transfer.ts), with what that form leaves out
 * and OTLP needs: trace state, links' trace state and dropped counts.
 */
export type CompactSpan = [
  name: string,
  kind: SpanKind,
  traceId: string,
  spanId: string,
  traceFlags: number,
  /** Serialized W3C tracestate, when the span has one. */
  traceState: string | undefined,
  /** Undefined for a root span. */
  parentSpanId: string | undefined,
  parentIsRemote: boolean | undefined,
  startSeconds: number,
  startNanos: number,
  endSeconds: number,
  endNanos: number,
  statusCode: SpanStatus['code'],
  statusMessage: string | undefined,
  attributes: Attributes,
  links: CompactLink[] | undefined,
  events: TimedEvent[] | undefined,
  droppedAttributes: number,
  droppedEvents: number,
  droppedLinks: number,
  resourceId: number,
  scopeId: number,
];

/** A link: its span context (trace state serialized), attributes and dropped attribute count. */
export type CompactLink = [traceId: string, spanId: string, traceFlags: number, isRemote: boolean | undefined, traceState: string | undefined, attributes: Attributes | undefined, droppedAttributes: number | undefined];

/** A resource, sent once: its id, attributes (settled) and schema URL. */
export type ResourceDefinition = [id: number, attributes: Attributes, schemaUrl: string | undefined];

/** An instrumentation scope, sent once: its id, name, version, schema URL and attributes (when the scope has some). */
export type ScopeDefinition = [id: number, name: string, version: string | undefined, schemaUrl: string | undefined, attributes: Attributes | undefined];

/** The resources, scopes and attribute keys first used by a batch, sent with it. */
export interface CompactDefinitions {
  resources: ResourceDefinition[];
  scopes: ScopeDefinition[];
  /** Attribute keys, numbered in the order they come (the first key sent is 0). */
  keys: string[];
}

/** Attribute keys the dictionary numbers at most (beyond them a key is sent as text). */
export const MAX_KEYS = 4096;

/** The scope fields isotrace forwards; OpenTelemetry's type has no attributes yet, newer SDKs may. */
export type ScopeLike = ReadableSpan['instrumentationScope'] & { readonly attributes?: Attributes };

/**
 * Gives each resource, scope and attribute key a number the first time a span
 * uses it, so the main thread sends them once per export thread. Spans of one tracer share
 * its scope object and every span of a provider its resource, so a lookup by
 * identity is all a span costs.
 */
export class CompactDictionary {
  readonly #resources = new Map<Resource, number>();
  readonly #scopes = new Map<ScopeLike, number>();
  readonly #keys = new Map<string, number>();
  #unsent: CompactDefinitions = { resources: [], scopes: [], keys: [] };
  /** Resources whose asynchronous attributes have not settled yet: their definition waits. */
  readonly #settling = new Set<Promise<void>>();

  /** The number of the span's resource; one seen for the first time is queued for the next batch. */
  resourceId(resource: Resource): number {
    return this.#resources.get(resource) ?? this.#defineResource(resource);
  }

  /** The number of the span's instrumentation scope; one seen for the first time is queued for the next batch. */
  scopeId(scope: ScopeLike): number {
    return this.#scopes.get(scope) ?? this.#defineScope(scope);
  }

  /**
   * The number of an attribute key (queued for the next batch the first time),
   * or -1 once the dictionary holds MAX_KEYS: keys made from data (an id in a
   * key) then travel as text, and the dictionary stays bounded.
   */
  keyId(key: string): number {
    const id = this.#keys.get(key);
    if (id !== undefined) return id;
    if (this.#keys.size >= MAX_KEYS) return -1;
    this.#keys.set(key, this.#keys.size);
    this.#unsent.keys.push(key);
    return this.#keys.size - 1;
  }

  /** Whether a resource is still settling its asynchronous attributes (a batch using it must wait). */
  get settling(): boolean {
    return this.#settling.size > 0;
  }

  /** Resolves once every resource seen so far has settled. */
  async settled(): Promise<void> {
    while (this.#settling.size > 0) await Promise.all(this.#settling);
  }

  /** The definitions not sent yet (undefined when none), handed over with the batch about to be posted. */
  takeUnsent(): CompactDefinitions | undefined {
    const unsent = this.#unsent;
    if (unsent.resources.length === 0 && unsent.scopes.length === 0 && unsent.keys.length === 0) return undefined;
    this.#unsent = { resources: [], scopes: [], keys: [] };
    return unsent;
  }

  /** Definitions taken for a batch that could not be posted: they go with the next one (spans after it use them). */
  requeue(definitions: CompactDefinitions): void {
    const unsent = this.#unsent;
    this.#unsent = { resources: [...definitions.resources, ...unsent.resources], scopes: [...definitions.scopes, ...unsent.scopes], keys: [...definitions.keys, ...unsent.keys] };
  }

  #defineResource(resource: Resource): number {
    const id = this.#resources.size;
    this.#resources.set(resource, id);
    const define = (): void => void this.#unsent.resources.push([id, { ...resource.attributes }, resource.schemaUrl]);
    if (!resource.asyncAttributesPending || !resource.waitForAsyncAttributes) {
      define();
      return id;
    }
    // Detected attributes (host.id) may still be on their way: the definition goes once they are, as the batch processor waits for them before exporting.
    const settling: Promise<void> = resource
      .waitForAsyncAttributes()
      .catch(() => {})
      .then(() => {
        define();
        this.#settling.delete(settling);
      });
    this.#settling.add(settling);
    return id;
  }

  #defineScope(scope: ScopeLike): number {
    const id = this.#scopes.size;
    this.#scopes.set(scope, id);
    this.#unsent.scopes.push([id, scope.name, scope.version, scope.schemaUrl, scope.attributes && Object.keys(scope.attributes).length > 0 ? scope.attributes : undefined]);
    return id;
  }
}

/**
 * The export thread's side: turns compact spans back into the ReadableSpans
 * OpenTelemetry's OTLP serializers read, with one resource and one scope
 * object per definition (the serializers group spans by their identity).
 */
export class CompactReader {
  readonly #resources = new Map<number, Resource>();
  readonly #scopes = new Map<number, ScopeLike>();
  readonly #keys: string[] = [];
  readonly #makeResource: (attributes: Attributes, schemaUrl: string | undefined) => Resource;

  /** `makeResource` builds a resource (resourceFromAttributes), kept out of this module so the main thread does not load it. */
  constructor(makeResource: (attributes: Attributes, schemaUrl: string | undefined) => Resource) {
    this.#makeResource = makeResource;
  }

  /** The attribute keys defined so far, by number. */
  get keys(): readonly string[] {
    return this.#keys;
  }

  define(definitions: CompactDefinitions): void {
    for (const key of definitions.keys) this.#keys.push(key);
    for (const [id, attributes, schemaUrl] of definitions.resources) this.#resources.set(id, this.#makeResource(attributes, schemaUrl));
    for (const [id, name, version, schemaUrl, attributes] of definitions.scopes) {
      this.#scopes.set(id, { name, ...(version === undefined ? {} : { version }), ...(schemaUrl === undefined ? {} : { schemaUrl }), ...(attributes ? { attributes } : {}) });
    }
  }

  /** Whether the span's resource and scope are known (a batch is always sent after their definitions). */
  canRead(data: CompactSpan): boolean {
    return this.#resources.has(data[20]) && this.#scopes.has(data[21]);
  }

  /** The resource defined as `id` (undefined until it is). */
  resource(id: number): Resource | undefined {
    return this.#resources.get(id);
  }

  /** The instrumentation scope defined as `id` (undefined until it is). */
  scope(id: number): ScopeLike | undefined {
    return this.#scopes.get(id);
  }

  read(data: CompactSpan): ReadableSpan {
    const [
      name, kind, traceId, spanId, traceFlags, traceState, parentSpanId, parentIsRemote, startSeconds, startNanos, endSeconds, endNanos,
      statusCode, statusMessage, attributes, links, events, droppedAttributes, droppedEvents, droppedLinks, resourceId, scopeId,
    ] = data;
    const context: SpanContext = { traceId, spanId, traceFlags, ...(traceState === undefined ? {} : { traceState: createTraceState(traceState) }) };
    const startTime: HrTime = [startSeconds, startNanos];
    const endTime: HrTime = [endSeconds, endNanos];
    return {
      name,
      kind,
      spanContext: () => context,
      parentSpanContext: parentSpanId === undefined ? undefined : { traceId, spanId: parentSpanId, traceFlags, isRemote: parentIsRemote },
      startTime,
      endTime,
      status: statusMessage === undefined ? { code: statusCode } : { code: statusCode, message: statusMessage },
      attributes,
      links: links?.map(fromCompactLink) ?? [],
      events: events ?? [],
      duration: subtract(endTime, startTime),
      ended: true,
      resource: this.#resources.get(resourceId)!,
      instrumentationScope: this.#scopes.get(scopeId)!,
      droppedAttributesCount: droppedAttributes,
      droppedEventsCount: droppedEvents,
      droppedLinksCount: droppedLinks,
    };
  }
}

export function fromCompactLink([traceId, spanId, traceFlags, isRemote, traceState, attributes, droppedAttributesCount]: CompactLink): Link {
  const context: SpanContext = { traceId, spanId, traceFlags, isRemote, ...(traceState === undefined ? {} : { traceState: createTraceState(traceState) }) };
  return { context, ...(attributes ? { attributes } : {}), ...(droppedAttributesCount === undefined ? {} : { droppedAttributesCount }) };
}

function subtract([endS, endNs]: HrTime, [startS, startNs]: HrTime): HrTime {
  let seconds = endS - startS;
  let nanos = endNs - startNs;
  if (nanos < 0) {
    seconds -= 1;
    nanos += 1e9;
  }
  return [seconds, nanos];
}
