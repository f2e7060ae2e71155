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

/** The events of forwarded span data (empty when it has none). */
export function eventsOf(data: SpanData): readonly TimedEvent[] {
  return data[18] ?? [];
}

/** A ReadableSpan over forwarded data, carrying the exporting process's resource. */
export function fromSpanData(data: SpanData, resource: Resource): ReadableSpan {
  const [
    name, kind, traceId, spanId, traceFlags, isRemote, parentTraceId, parentSpanId, parentTraceFlags, parentIsRemote,
    startSeconds, startNanos, endSeconds, endNanos, statusCode, statusMessage, attributes, links, events,
    droppedAttributes, droppedEvents, droppedLinks, scopeName, scopeVersion, scopeSchemaUrl,
  ] = data;
  const context: SpanContext = { traceId, spanId, traceFlags, isRemote };
  const parent: SpanContext | undefined = parentSpanId === undefined ? undefined : { traceId: parentTraceId ?? traceId, spanId: parentSpanId, traceFlags: parentTraceFlags!, isRemote: parentIsRemote };
  const startTime: HrTime = [startSeconds, startNanos];
  const endTime: HrTime = [endSeconds, endNanos];
  return {
    name,
    kind,
    spanContext: () => context,
    parentSpanContext: parent,
    startTime,
    endTime,
    status: statusMessage === undefined ? { code: statusCode } : { code: statusCode, message: statusMessage },
    attributes,
    links: links ?? [],
    events: events ?? [],
    duration: subtract(endTime, startTime),
    ended: true,
    resource,
    instrumentationScope: { name: scopeName, version: scopeVersion, schemaUrl: scopeSchemaUrl },
    droppedAttributesCount: droppedAttributes,
    droppedEventsCount: droppedEvents,
    droppedLinksCount: droppedLinks,
  };
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
