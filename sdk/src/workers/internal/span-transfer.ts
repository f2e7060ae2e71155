import type { Attributes, HrTime, Link, SpanContext, SpanKind, SpanStatus } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';

/**
 * A finished span as plain data, to send from a worker thread to the thread
 * that exports. One flat array (structured clone pays per object and per
 * property: a span as nested objects cost more to send than the task itself);
 * links and events travel only when there are some.
 */
export type SpanData = [
  name: string,
  kind: SpanKind,
  traceId: string,
  spanId: string,
  traceFlags: number,
  isRemote: boolean | undefined,
  /** Undefined for a root span, and where it is the span's own (a child's always is: sent once). */
  parentTraceId: string | undefined,
  /** Undefined for a root span. */
  parentSpanId: string | undefined,
  parentTraceFlags: number | undefined,
  parentIsRemote: boolean | undefined,
  startSeconds: number,
  startNanos: number,
  endSeconds: number,
  endNanos: number,
  statusCode: SpanStatus['code'],
  statusMessage: string | undefined,
  attributes: Attributes,
  links: Link[] | undefined,
  events: TimedEvent[] | undefined,
  droppedAttributes: number,
  droppedEvents: number,
  droppedLinks: number,
  scopeName: string,
  scopeVersion: string | undefined,
  scopeSchemaUrl: string | undefined,
];

export function toSpanData(span: ReadableSpan): SpanData {
  const { traceId, spanId, traceFlags, isRemote } = span.spanContext();
  const parent = span.parentSpanContext;
  const { code, message } = span.status;
  const scope = span.instrumentationScope;
  return [
    span.name,
    span.kind,
    traceId,
    spanId,
    traceFlags,
    isRemote,
    parent?.traceId === traceId ? undefined : parent?.traceId,
    parent?.spanId,
    parent?.traceFlags,
    parent?.isRemote,
    span.startTime[0],
    span.startTime[1],
    span.endTime[0],
    span.endTime[1],
    code,
    message,
    span.attributes,
    span.links.length === 0 ? undefined : span.links.map((link) => ({ context: { ...link.context, traceState: undefined }, attributes: link.attributes })),
    span.events.length === 0 ? undefined : span.events,
    span.droppedAttributesCount,
    span.droppedEventsCount,
    span.droppedLinksCount,
    scope.name,
    scope.version,
    scope.schemaUrl,
  ];
}

/** A ReadableSpan over forwarded data, carrying the exporting process's resource. */
export function fromSpanData(data: SpanData, resource: Resource): ReadableSpan {
  return new ForwardedSpan(data, resource);
}

/**
 * A span finished in a worker thread, as the exporting thread's processors
 * see it. A class rather than an object literal with a spanContext() closure:
 * one shape for every forwarded span, nothing made per span but its fields.
 * The data is read by index (destructuring an array walks its iterator).
 */
class ForwardedSpan implements ReadableSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly parentSpanContext: SpanContext | undefined;
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly status: SpanStatus;
  readonly attributes: Attributes;
  readonly links: Link[];
  readonly events: TimedEvent[];
  readonly duration: HrTime;
  readonly ended = true;
  readonly resource: Resource;
  readonly instrumentationScope: ReadableSpan['instrumentationScope'];
  readonly droppedAttributesCount: number;
  readonly droppedEventsCount: number;
  readonly droppedLinksCount: number;
  readonly #context: SpanContext;

  constructor(data: SpanData, resource: Resource) {
    const traceId = data[2];
    const parentSpanId = data[7];
    const statusMessage = data[15];
    this.name = data[0];
    this.kind = data[1];
    this.#context = { traceId, spanId: data[3], traceFlags: data[4], isRemote: data[5] };
    this.parentSpanContext = parentSpanId === undefined ? undefined : { traceId: data[6] ?? traceId, spanId: parentSpanId, traceFlags: data[8]!, isRemote: data[9] };
    this.startTime = [data[10], data[11]];
    this.endTime = [data[12], data[13]];
    this.status = statusMessage === undefined ? { code: data[14] } : { code: data[14], message: statusMessage };
    this.attributes = data[16];
    this.links = data[17] ?? [];
    this.events = data[18] ?? [];
    this.duration = subtract(this.endTime, this.startTime);
    this.resource = resource;
    this.instrumentationScope = { name: data[22], version: data[23], schemaUrl: data[24] };
    this.droppedAttributesCount = data[19];
    this.droppedEventsCount = data[20];
    this.droppedLinksCount = data[21];
  }

  spanContext(): SpanContext {
    return this.#context;
  }
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
