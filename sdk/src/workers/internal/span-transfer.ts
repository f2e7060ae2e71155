import type { Attributes, HrTime, Link, SpanContext, SpanKind, SpanStatus } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace';

/** A finished span as plain data, to send from a worker thread to the thread that exports. */
export interface SpanData {
  name: string;
  kind: SpanKind;
  context: SpanContext;
  parent?: SpanContext | undefined;
  startTime: HrTime;
  endTime: HrTime;
  status: SpanStatus;
  attributes: Attributes;
  links: Link[];
  events: TimedEvent[];
  dropped: [attributes: number, events: number, links: number];
  scope: { name: string; version?: string | undefined; schemaUrl?: string | undefined };
}

export function toSpanData(span: ReadableSpan): SpanData {
  const { traceId, spanId, traceFlags, isRemote } = span.spanContext();
  const parent = span.parentSpanContext;
  return {
    name: span.name,
    kind: span.kind,
    context: { traceId, spanId, traceFlags, isRemote },
    parent: parent && { traceId: parent.traceId, spanId: parent.spanId, traceFlags: parent.traceFlags, isRemote: parent.isRemote },
    startTime: span.startTime,
    endTime: span.endTime,
    status: span.status,
    attributes: span.attributes,
    links: span.links.map((link) => ({ context: { ...link.context, traceState: undefined }, attributes: link.attributes })),
    events: span.events,
    dropped: [span.droppedAttributesCount, span.droppedEventsCount, span.droppedLinksCount],
    scope: { name: span.instrumentationScope.name, version: span.instrumentationScope.version, schemaUrl: span.instrumentationScope.schemaUrl },
  };
}

/** A ReadableSpan over forwarded data, carrying the exporting process's resource. */
export function fromSpanData(data: SpanData, resource: Resource): ReadableSpan {
  const duration: HrTime = subtract(data.endTime, data.startTime);
  return {
    name: data.name,
    kind: data.kind,
    spanContext: () => data.context,
    parentSpanContext: data.parent,
    startTime: data.startTime,
    endTime: data.endTime,
    status: data.status,
    attributes: data.attributes,
    links: data.links,
    events: data.events,
    duration,
    ended: true,
    resource,
    instrumentationScope: data.scope,
    droppedAttributesCount: data.dropped[0],
    droppedEventsCount: data.dropped[1],
    droppedLinksCount: data.dropped[2],
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
