import {
  context as contextApi,
  createContextKey,
  diag,
  INVALID_SPAN_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type AttributeValue,
  type Context,
  type Exception,
  type HrTime,
  type Link,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type TimeInput,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, Span as SdkSpan, SpanProcessor, TimedEvent } from '@opentelemetry/sdk-trace';
import { BYTE_HEX } from '../../context/internal/random-uuid.js';

// The tracer provider of a worker thread that forwards its spans to the
// submitting thread. Spans there must be what @opentelemetry/sdk-trace's
// TracerProvider with its defaults makes (ParentBased(AlwaysOn) sampling, the
// default span limits, the SDK's attribute, event, link, status and time
// rules), but loading that SDK (with @opentelemetry/core, resources and
// semantic-conventions, some 80 modules) was most of a new thread's first
// task. This is the SDK's Tracer and SpanImpl (3.x) without their exporters,
// metrics and configuration: the worker's spans are exported by the submitting
// thread's SDK, which applies its own.

/** The SDK's default span limits (a TracerProvider without spanLimits). */
const LIMIT = 128;
const SPAN_LIMITS = Object.freeze({ attributeCountLimit: LIMIT });
/** @opentelemetry/core's suppressTracing() key (a context key is Symbol.for(its name): the same in every copy). */
const SUPPRESS_TRACING_KEY = createContextKey('OpenTelemetry SDK Context Key SUPPRESS_TRACING');
const NANOS_PER_SECOND = 1e9;

/**
 * A TracerProvider whose spans go to `processors` (onStart in order, then
 * onEnd in order), as the SDK's TracerProvider({ resource, spanProcessors }).
 */
export class WorkerTracerProvider implements TracerProvider {
  readonly #tracers = new Map<string, WorkerTracer>();
  readonly #resource: Resource;
  readonly #processors: readonly SpanProcessor[];

  constructor(resource: Resource, processors: readonly SpanProcessor[]) {
    this.#resource = resource;
    this.#processors = processors;
  }

  getTracer(name: string, version?: string, options?: { schemaUrl?: string }): Tracer {
    const key = `${name}@${version ?? ''}:${options?.schemaUrl ?? ''}`;
    let tracer = this.#tracers.get(key);
    if (!tracer) this.#tracers.set(key, (tracer = new WorkerTracer({ name, version, schemaUrl: options?.schemaUrl }, this.#resource, this.#processors)));
    return tracer;
  }
}

type Scope = ReadableSpan['instrumentationScope'];

class WorkerTracer implements Tracer {
  readonly #scope: Scope;
  readonly #resource: Resource;
  readonly #processors: readonly SpanProcessor[];

  constructor(scope: Scope, resource: Resource, processors: readonly SpanProcessor[]) {
    this.#scope = scope;
    this.#resource = resource;
    this.#processors = processors;
  }

  startSpan(name: string, options: SpanOptions = {}, ctx: Context = contextApi.active()): Span {
    if (options.root) ctx = trace.deleteSpan(ctx);
    if (ctx.getValue(SUPPRESS_TRACING_KEY) === true) return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    const parent = trace.getSpan(ctx)?.spanContext();
    const validParent = parent && trace.isSpanContextValid(parent) ? parent : undefined;
    // ParentBased(AlwaysOn): a root span is sampled; a child follows its parent's sampled flag.
    const sampled = validParent === undefined || (validParent.traceFlags & TraceFlags.SAMPLED) !== 0;
    const spanContext: SpanContext = {
      traceId: validParent?.traceId ?? randomId(16),
      spanId: randomId(8),
      traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
      ...(validParent?.traceState ? { traceState: validParent.traceState } : {}),
    };
    if (!sampled) return trace.wrapSpanContext(spanContext);
    const links = options.links === undefined ? [] : options.links.map((link) => ({ context: link.context, ...cleanAttributes(link.attributes, LIMIT, isAnyValue) }));
    const { attributes, droppedAttributesCount } = cleanAttributes(options.attributes, LIMIT, isAnyValue);
    const span = new WorkerSpan({ name, kind: options.kind ?? SpanKind.INTERNAL, spanContext, parent: validParent, links, attributes: attributes ?? {}, droppedAttributesCount: droppedAttributesCount ?? 0, startTime: options.startTime, scope: this.#scope, resource: this.#resource, processors: this.#processors });
    for (const processor of this.#processors) processor.onStart(span as unknown as SdkSpan, ctx);
    return span;
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, ctx: Context, fn: F): ReturnType<F>;
  startActiveSpan(name: string, ...args: unknown[]): unknown {
    // The SDK's argument rules: (fn), (options, fn) or (options, context, fn); nothing without fn.
    if (args.length === 0) return undefined;
    const fn = args[args.length - 1] as (span: Span) => unknown;
    const options = args.length > 1 ? (args[0] as SpanOptions | undefined) : undefined;
    const parent = (args.length > 2 ? (args[1] as Context | undefined) : undefined) ?? contextApi.active();
    const span = this.startSpan(name, options, parent);
    return contextApi.with(trace.setSpan(parent, span), fn, undefined, span);
  }
}

interface WorkerSpanInit {
  name: string;
  kind: SpanKind;
  spanContext: SpanContext;
  parent: SpanContext | undefined;
  links: Link[];
  attributes: Attributes;
  droppedAttributesCount: number;
  startTime: TimeInput | undefined;
  scope: Scope;
  resource: Resource;
  processors: readonly SpanProcessor[];
}

/** A recording span, and the ReadableSpan the processors get when it ends. */
class WorkerSpan implements Span, ReadableSpan {
  name: string;
  readonly kind: SpanKind;
  readonly parentSpanContext: SpanContext | undefined;
  readonly attributes: Attributes;
  links: Link[];
  readonly events: TimedEvent[] = [];
  readonly startTime: HrTime;
  endTime: HrTime = [0, 0];
  status: SpanStatus = { code: SpanStatusCode.UNSET };
  readonly resource: Resource;
  readonly instrumentationScope: Scope;
  duration: HrTime = [-1, -1];
  ended = false;
  droppedAttributesCount: number;
  droppedEventsCount = 0;
  droppedLinksCount = 0;
  readonly #spanContext: SpanContext;
  readonly #processors: readonly SpanProcessor[];
  /**
   * The SDK span's names for its attribute count and limits: isotrace writes
   * the request identity it checked itself straight into spans that have them
   * (see directAttributes()), as setAttribute() would, without validating it
   * again on every span.
   */
  _attributesCount: number;
  readonly _spanLimits = SPAN_LIMITS;
  /** performance.now() at start, and what turns a performance.now() reading into epoch milliseconds (as the SDK's span). */
  readonly #startedAt: number;
  readonly #epochOffset: number;
  readonly #startTimeGiven: boolean;

  constructor(init: WorkerSpanInit) {
    const now = Date.now();
    this.#startedAt = performance.now();
    this.#epochOffset = now - (this.#startedAt + performance.timeOrigin);
    this.#startTimeGiven = init.startTime != null;
    this.#spanContext = init.spanContext;
    this.#processors = init.processors;
    this.name = init.name;
    this.kind = init.kind;
    this.parentSpanContext = init.parent;
    this.resource = init.resource;
    this.instrumentationScope = init.scope;
    this.startTime = this.#time(init.startTime ?? now);
    this.links = init.links.length > LIMIT ? init.links.slice(init.links.length - LIMIT) : init.links;
    this.droppedLinksCount = init.links.length - this.links.length;
    this.attributes = init.attributes;
    this._attributesCount = Object.keys(init.attributes).length;
    this.droppedAttributesCount = init.droppedAttributesCount;
  }

  spanContext(): SpanContext {
    return this.#spanContext;
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (this.#endedAlready() || value === undefined) return this;
    if (key.length === 0) {
      diag.warn(`Invalid attribute key: ${key}`);
      return this;
    }
    const isNew = !Object.hasOwn(this.attributes, key);
    if (isNew && this._attributesCount >= LIMIT) {
      if (++this.droppedAttributesCount === 1) diag.warn('Dropping extra attributes.');
      return this;
    }
    if (!isAnyValue(value)) {
      diag.warn(`Invalid attribute value set for key: ${key}`);
      return this;
    }
    this.attributes[key] = copyValue(value) as AttributeValue;
    if (isNew) this._attributesCount++;
    return this;
  }

  setAttributes(attributes: Attributes): this {
    for (const key in attributes) if (Object.hasOwn(attributes, key)) this.setAttribute(key, attributes[key]!);
    return this;
  }

  addEvent(name: string, attributesOrTime?: Attributes | TimeInput, time?: TimeInput): this {
    if (this.#endedAlready()) return this;
    if (this.events.length >= LIMIT) {
      if (this.droppedEventsCount === 0) diag.debug('Dropping extra events.');
      this.events.shift();
      this.droppedEventsCount++;
    }
    let attributes = attributesOrTime as Attributes | undefined;
    if (isTimeInput(attributesOrTime)) {
      if (!isTimeInput(time)) time = attributesOrTime;
      attributes = undefined;
    }
    this.events.push({ name, time: this.#time(time), ...cleanAttributes(attributes, LIMIT, isSimpleValue) });
    return this;
  }

  addLink(link: Link): this {
    if (this.#endedAlready()) return this;
    if (this.links.length >= LIMIT) {
      if (this.droppedLinksCount === 0) diag.debug('Dropping extra links.');
      this.links.shift();
      this.droppedLinksCount++;
    }
    this.links.push({ context: link.context, ...cleanAttributes(link.attributes, LIMIT, isAnyValue) });
    return this;
  }

  addLinks(links: Link[]): this {
    for (const link of links) this.addLink(link);
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (this.#endedAlready() || status.code === SpanStatusCode.UNSET || this.status.code === SpanStatusCode.OK) return this;
    const next: SpanStatus = { code: status.code };
    if (status.code === SpanStatusCode.ERROR) {
      if (typeof status.message === 'string') next.message = status.message;
      else if (status.message != null) diag.warn(`Dropping invalid status.message of type '${typeof status.message}', expected 'string'`);
    }
    this.status = next;
    return this;
  }

  updateName(name: string): this {
    if (!this.#endedAlready()) this.name = name;
    return this;
  }

  end(endTime?: TimeInput): void {
    if (this.ended) {
      diag.error(`${this.name} ${this.#spanContext.traceId}-${this.#spanContext.spanId} - You can only call end() on a span once.`);
      return;
    }
    this.endTime = this.#time(endTime);
    this.duration = subtract(this.endTime, this.startTime);
    if (this.duration[0] < 0) {
      diag.warn('Inconsistent start and end time, startTime > endTime. Setting span duration to 0ms.', this.startTime, this.endTime);
      this.endTime = [...this.startTime];
      this.duration = [0, 0];
    }
    for (const processor of this.#processors) processor.onEnding?.(this as unknown as SdkSpan);
    this.ended = true;
    for (const processor of this.#processors) processor.onEnd(this);
  }

  isRecording(): boolean {
    return !this.ended;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: Attributes = {};
    if (typeof exception === 'string') attributes['exception.message'] = exception;
    else if (exception) {
      if (exception.code) attributes['exception.type'] = exception.code.toString();
      else if (exception.name) attributes['exception.type'] = exception.name;
      if (exception.message) attributes['exception.message'] = exception.message;
      if (exception.stack) attributes['exception.stacktrace'] = exception.stack;
    }
    if (attributes['exception.type'] || attributes['exception.message']) this.addEvent('exception', attributes, time);
    else diag.warn(`Failed to record an exception ${String(exception)}`);
  }

  /** A time input as the SDK's span reads it: performance.now() readings, epoch milliseconds, Dates, HrTime; none is now. */
  #time(input: TimeInput | undefined): HrTime {
    if (typeof input === 'number' && input <= performance.now()) return add(millisToHrTime(performance.timeOrigin), millisToHrTime(input + this.#epochOffset));
    if (typeof input === 'number') return millisToHrTime(input);
    if (input instanceof Date) return millisToHrTime(input.getTime());
    if (isHrTime(input)) return input;
    if (this.#startTimeGiven) return millisToHrTime(Date.now());
    return add(this.startTime, millisToHrTime(performance.now() - this.#startedAt));
  }

  #endedAlready(): boolean {
    if (this.ended) diag.warn(`Cannot execute the operation on ended Span {traceId: ${this.#spanContext.traceId}, spanId: ${this.#spanContext.spanId}}`);
    return this.ended;
  }
}

/** A minimal Resource for the worker's spans: they are exported with the submitting thread's resource (see fromSpanData()). */
export function workerResource(attributes: Attributes): Resource {
  return {
    attributes,
    merge: (other) => workerResource({ ...attributes, ...other?.attributes }),
    getRawAttributes: () => Object.entries(attributes),
  };
}

/** A random id of `bytes` bytes as lowercase hex, never all zeros (an invalid id); from Math.random, as the SDK's RandomIdGenerator. */
function randomId(bytes: 8 | 16): string {
  let id = '';
  for (let i = 0; i < bytes; i += 4) {
    const word = (Math.random() * 2 ** 32) >>> 0;
    id += BYTE_HEX[word >>> 24]! + BYTE_HEX[(word >>> 16) & 0xff]! + BYTE_HEX[(word >>> 8) & 0xff]! + BYTE_HEX[word & 0xff]!;
  }
  return id === INVALID_IDS[bytes] ? `${id.slice(0, -1)}1` : id;
}

const INVALID_IDS = { 8: '0'.repeat(16), 16: '0'.repeat(32) };

/** @opentelemetry/core's cleanAttributes(): drops undefined, empty keys, invalid values and those over the count limit; copies arrays and maps. */
function cleanAttributes(input: Attributes | undefined, countLimit: number, isValid: (value: unknown) => boolean): { attributes?: Attributes; droppedAttributesCount?: number } {
  if (typeof input !== 'object' || input === null) return {};
  const attributes: Attributes = {};
  let dropped = 0;
  let count = 0;
  for (const key in input) {
    const value = input[key];
    if (value === undefined || !Object.hasOwn(input, key)) continue;
    if (count >= countLimit) dropped++;
    else if (key.length === 0) {
      diag.warn(`Invalid attribute key: ${key}`);
      dropped++;
    } else if (!isValid(value)) {
      diag.warn(`Invalid attribute value set for key: ${key}`);
      dropped++;
    } else {
      attributes[key] = copyValue(value) as AttributeValue;
      count++;
    }
  }
  return { attributes, droppedAttributesCount: dropped };
}

/** An OpenTelemetry AnyValue: a primitive, null, bytes, or arrays and plain maps of those (no cycles). */
function isAnyValue(value: unknown): boolean {
  // Most attribute values are primitives: the cycle check's WeakSet is made only for the others.
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || isAnyObjectValue(value, new WeakSet());
}

function isAnyObjectValue(value: unknown, visiting: WeakSet<object>): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return true;
  if (typeof value !== 'object') return false;
  if (value instanceof Uint8Array) return true;
  if (visiting.has(value)) return false;
  visiting.add(value);
  let valid: boolean;
  if (Array.isArray(value)) valid = value.every((item) => item === undefined || isAnyObjectValue(item, visiting));
  else valid = (value.constructor === Object || value.constructor === undefined) && Object.values(value).every((item) => item === undefined || isAnyObjectValue(item, visiting));
  visiting.delete(value);
  return valid;
}

/** A "simple" attribute value (events): a string, number or boolean, or a homogeneous array of one of them (nulls allowed). */
function isSimpleValue(value: unknown): boolean {
  if (!Array.isArray(value)) return isPrimitive(typeof value);
  let type: string | undefined;
  for (const item of value) {
    if (item == null) continue;
    if (type === undefined && isPrimitive(typeof item)) type = typeof item;
    else if (typeof item !== type) return false;
  }
  return true;
}

function isPrimitive(type: string): boolean {
  return type === 'string' || type === 'number' || type === 'boolean';
}

/** A deep copy of arrays and maps, so the caller's later changes do not reach the span. */
function copyValue(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map(copyValue);
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) if (item !== undefined) copy[key] = copyValue(item);
  return copy;
}

function isHrTime(value: unknown): value is HrTime {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === 'number' && typeof value[1] === 'number';
}

function isTimeInput(value: unknown): value is TimeInput {
  return isHrTime(value) || typeof value === 'number' || value instanceof Date;
}

function millisToHrTime(millis: number): HrTime {
  const seconds = Math.trunc(millis / 1000);
  // millis % 1000 exactly (the subtraction of two close doubles is exact), without the remainder's fmod() call.
  return [seconds, Math.round((millis - seconds * 1000) * 1e6)];
}

function add([s1, n1]: HrTime, [s2, n2]: HrTime): HrTime {
  const nanos = n1 + n2;
  return nanos >= NANOS_PER_SECOND ? [s1 + s2 + 1, nanos - NANOS_PER_SECOND] : [s1 + s2, nanos];
}

function subtract([s1, n1]: HrTime, [s2, n2]: HrTime): HrTime {
  const nanos = n1 - n2;
  return nanos < 0 ? [s1 - s2 - 1, nanos + NANOS_PER_SECOND] : [s1 - s2, nanos];
}
