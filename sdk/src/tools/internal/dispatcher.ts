import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { AUDIT } from '../../audit/internal/attributes.js';
import { auditToolBoundary } from '../../audit/internal/runtime-audit.js';
import type { RuntimeCheck } from '../../audit/types.js';
import { directAttributes, putAttribute, roomFor, type CheckedValue } from '../../context/internal/checked-attributes.js';
import { identityAttributes, stampIdentity } from '../../context/internal/request-attributes-processor.js';
import type { RequestContextImpl } from '../../context/internal/request-context.js';
import { recordError, requestContextOf } from '../../context/internal/request-scope.js';
import { UnknownToolError } from '../../errors/errors.js';
import { reportOnce } from '../../tracing/internal/report.js';
import { getRuntime } from '../../tracing/internal/runtime.js';
import type { RedactInfo } from '../../tracing/types.js';
import type { ExecuteOptions, ToolClass, ToolDispatcher, ToolType } from '../types.js';
import { agentAttributesFor } from './agent-span.js';
import { DefinedTool } from './define-tool.js';
import { EXECUTE_TOOL, GEN_AI } from './gen-ai.js';
import { isStreamResult, traceStream, type StreamScope } from './streaming.js';
import type { Tool } from './tool.js';
import { ToolCallImpl } from './tool-call.js';
import { randomUuid } from '../../context/internal/random-uuid.js';
import { thrownText } from '../../errors/internal/thrown.js';

/** Longest recorded arguments or result; longer ones are cut and marked. */
const MAX_RECORDED_LENGTH = 8192;

/** The tool system a call's span belongs to. */
const REGISTRY_ID = 'isotrace.registry_id';

interface Recording {
  recordToolArguments: boolean;
  redact: ((value: unknown, info: RedactInfo) => unknown) | undefined;
}

/**
 * A tool's span attributes that are the same in every tool system: those given at start (what a
 * sampler sees), and its type and description (undefined for a name no tool has). The registry
 * id, the audit result and the call id are per system and per call.
 */
interface ToolTemplate {
  readonly start: Readonly<Record<string, CheckedValue>>;
  readonly toolType: string | undefined;
  readonly toolDescription: string | undefined;
}

/** A template and the name, description and type it was made from (a class's statics, or a definition's). */
interface ClassTemplate extends ToolTemplate {
  readonly toolName: string;
  readonly description: unknown;
  readonly type: unknown;
}

/**
 * Templates of the tools called so far: per Tool subclass (a new tool system per request would
 * otherwise make its tools' templates again on every request), per instance for defineTool()
 * tools. Weak: a class or instance no longer used takes its template with it. Holds no request
 * data: the name, type and description of a tool.
 */
const templates = new WeakMap<object, ClassTemplate>();

/** The dispatcher of one tool system. */
export class Dispatcher implements ToolDispatcher {
  readonly registryId: string;
  readonly #owner: RequestContextImpl;
  readonly #tools: ReadonlyMap<string, Tool>;
  readonly #recording: Recording;

  constructor(owner: RequestContextImpl, registryId: string, tools: ReadonlyMap<string, Tool>, recording: Recording) {
    this.registryId = registryId;
    this.#owner = owner;
    this.#tools = tools;
    this.#recording = recording;
  }

  // Not async themselves: #execute() is, so a bad option still rejects, and the call is one promise, not two.
  execute<R = unknown>(name: string, args?: unknown, options?: ExecuteOptions): Promise<R> {
    return this.#execute<R>(name, args, options, undefined);
  }

  /**
   * Internal (the framework adapters): runs the call inside `span`, the framework's own
   * `execute_tool` span for this very call, instead of starting a second one (the GenAI
   * conventions want one span per call). The span gets isotrace's attributes and audits; its
   * owner ends it and records the exception, so this call never ends it. Like execute(), it
   * invokes the tool before it returns: an adapter that must hand its framework a stream
   * synchronously can tell a streaming tool by what the tool returned.
   */
  executeInSpan<R = unknown>(span: Span, name: string, args?: unknown, options?: ExecuteOptions): Promise<R> {
    return this.#execute<R>(name, args, options, span);
  }

  async #execute<R>(name: string, args: unknown, options: ExecuteOptions | undefined, borrowed: Span | undefined): Promise<R> {
    const { callId = `call_${randomUuid()}`, signal } = options === undefined ? NO_OPTIONS : checkedOptions(options);
    const { tracer } = getRuntime('dispatcher.execute()');
    const tool = this.#tools.get(name);
    const span = borrowed ? this.#enrich(borrowed, name, tool, callId) : this.#start(tracer, name, tool, callId);
    const toolContext = trace.setSpan(context.active(), span);
    return context.with(toolContext, async () => {
      let streaming = false;
      try {
        if (!tool) throw new UnknownToolError(name, this.registryId, [...this.#tools.keys()]);
        const failedAtStart = auditToolBoundary(this.#owner, span);
        if (this.#recording.recordToolArguments) this.#record(span, GEN_AI.toolCallArguments, args, { toolName: name, kind: 'arguments' });
        // Audited and recorded first: an aborted call is still a call of this request.
        signal?.throwIfAborted();
        // Invoked before the first await (executeInSpan() promises it).
        const result = await tool.run(args, new ToolCallImpl(callId, this.#owner, signal));
        if (isStreamResult(result)) {
          const stream = traceStream(result, this.#streamScope(toolContext, span, failedAtStart, borrowed !== undefined));
          // The call goes on while the caller consumes the stream: the span ends with the consumption.
          streaming = true;
          return stream as R;
        }
        auditToolBoundary(this.#owner, span, failedAtStart);
        if (this.#recording.recordToolArguments) this.#record(span, GEN_AI.toolCallResult, result, { toolName: name, kind: 'result' });
        return result as R;
      } catch (error) {
        recordFailure(span, error, borrowed !== undefined);
        throw error;
      } finally {
        if (!streaming && !borrowed) span.end();
      }
    });
  }

  /**
   * The end of a streamed call: `isotrace.stream.outcome` and `.items`, the error of a failed
   * stream, and the end-of-call audits in the consumer's context (a stream handed to another
   * request is a leak). Values are not recorded as the result: that would hold the whole stream.
   */
  #streamScope(toolContext: Context, span: Span, failedAtStart: ReadonlySet<RuntimeCheck>, borrowed: boolean): StreamScope {
    let ended = false;
    return {
      context: toolContext,
      span,
      end: (outcome, itemCount, error) => {
        if (ended) return;
        ended = true;
        try {
          span.setAttribute('isotrace.stream.outcome', outcome);
          span.setAttribute('isotrace.stream.items', itemCount);
          if (outcome === 'failed') recordFailure(span, error, borrowed);
          auditToolBoundary(this.#owner, span, failedAtStart);
        } catch (violation) {
          recordFailure(span, violation, borrowed);
          throw violation;
        } finally {
          if (!borrowed) span.end();
        }
      },
    };
  }

  /**
   * The call's `execute_tool` span. The sampler sees the span's name, kind and the operation and
   * tool names; the other GenAI attributes, the registry id and the audit result are the same for
   * every call of a tool and written once the span exists, without the SDK validating them again
   * on every call (see directAttributes()): attributes are most of a span's cost. For a system
   * used outside its owner's request, the owner's identity is set explicitly over the one the
   * RequestAttributesProcessor stamped from the active request: that is what lets the audits see
   * a borrowed system.
   */
  #start(tracer: Tracer, name: string, tool: Tool | undefined, callId: string): Span {
    const template = templateOf(name, tool);
    const span = tracer.startSpan(`execute_tool ${name}`, { kind: SpanKind.INTERNAL, attributes: template.start });
    this.#putCallAttributes(span, template, callId);
    const active = context.active();
    if (requestContextOf(active) !== this.#owner) stampIdentity(span, this.#owner, true);
    // The agent running this call (invokeAgent(), an adapter's agent span) and the conversation: both are known now.
    const agent = agentAttributesFor(active, this.#owner);
    if (agent) span.setAttributes(agent);
    return span;
  }

  /**
   * The call's attributes beyond those given at start, over any a processor set. Each key is
   * written at a line of its own where the span has room (see stampIdentity()): this runs on
   * every call.
   */
  #putCallAttributes(span: Span, { toolType, toolDescription }: ToolTemplate, callId: string): void {
    const direct = directAttributes(span);
    const attributes = roomFor(direct, 5);
    if (attributes === undefined) {
      // Not the SDK's span, or near its attribute count limit: key by key, as the SDK would decide.
      putAttribute(span, direct, REGISTRY_ID, this.registryId, true);
      putAttribute(span, direct, AUDIT.result, 'pass', true);
      if (toolType !== undefined) putAttribute(span, direct, GEN_AI.toolType, toolType, true);
      if (toolDescription !== undefined) putAttribute(span, direct, GEN_AI.toolDescription, toolDescription, true);
      putAttribute(span, direct, GEN_AI.toolCallId, callId, true);
      return;
    }
    let added = 0;
    if (attributes[REGISTRY_ID] === undefined) added++;
    attributes[REGISTRY_ID] = this.registryId;
    if (attributes[AUDIT.result] === undefined) added++;
    attributes[AUDIT.result] = 'pass';
    if (toolType !== undefined) {
      if (attributes[GEN_AI.toolType] === undefined) added++;
      attributes[GEN_AI.toolType] = toolType;
    }
    if (toolDescription !== undefined) {
      if (attributes[GEN_AI.toolDescription] === undefined) added++;
      attributes[GEN_AI.toolDescription] = toolDescription;
    }
    if (attributes[GEN_AI.toolCallId] === undefined) added++;
    attributes[GEN_AI.toolCallId] = callId;
    direct!._attributesCount! += added;
  }

  /**
   * A framework's span made this call's tool span: the GenAI attributes, the registry id and the
   * owner's identity always (its tracer may not stamp it). A violation already recorded on it
   * stays: only a span without an audit result is marked `pass`.
   */
  #enrich(span: Span, name: string, tool: Tool | undefined, callId: string): Span {
    const template = templateOf(name, tool);
    const attributes: Attributes = { ...template.start, [REGISTRY_ID]: this.registryId, [AUDIT.result]: 'pass' };
    if (template.toolType !== undefined) attributes[GEN_AI.toolType] = template.toolType;
    if (template.toolDescription !== undefined) attributes[GEN_AI.toolDescription] = template.toolDescription;
    attributes[GEN_AI.toolCallId] = callId;
    if ((span as Partial<ReadableSpan>).attributes?.[AUDIT.result] !== undefined) delete attributes[AUDIT.result];
    Object.assign(attributes, identityAttributes(this.#owner), agentAttributesFor(context.active(), this.#owner));
    span.setAttributes(attributes);
    return span;
  }

  /** Records arguments or a result after `redact`; a failing hook records a marker, never the raw value. */
  #record(span: Span, attribute: string, value: unknown, info: RedactInfo): void {
    if (value === undefined) return;
    let shown: unknown;
    try {
      shown = this.#recording.redact ? this.#recording.redact(value, info) : value;
    } catch (error) {
      // Only the error's name: its message may quote the very value being redacted.
      reportOnce('redact-failed', `the redact hook threw ${error instanceof Error ? error.name : typeof error}; the value was not recorded.`);
      span.setAttribute(attribute, '[redaction failed]');
      return;
    }
    span.setAttribute(attribute, truncate(toText(shown)));
  }
}

/**
 * The template of `tool`, called as `name`. A class's template is made again when its statics
 * changed since (a description set later is seen, as it was when each system read them).
 */
function templateOf(name: string, tool: Tool | undefined): ToolTemplate {
  // Unknown names are not kept: a caller could make up any number of them.
  if (!tool) return { start: startAttributes(name), toolType: undefined, toolDescription: undefined };
  if (tool instanceof DefinedTool) return templates.get(tool) ?? remember(tool, name, tool.info);
  const ToolClass = tool.constructor as ToolClass;
  const known = templates.get(ToolClass);
  if (known && known.toolName === name && known.description === ToolClass.description && known.type === ToolClass.type) return known;
  return remember(ToolClass, name, ToolClass);
}

/** Makes and keeps the template of the tool class or defined tool `key`. */
function remember(key: object, name: string, { description, type }: { description?: string; type?: ToolType }): ClassTemplate {
  const template: ClassTemplate = {
    start: startAttributes(name),
    toolType: type ?? 'function',
    toolDescription: description ?? '',
    toolName: name,
    description,
    type,
  };
  templates.set(key, template);
  return template;
}

/** What the sampler sees of a call of tool `name`. */
function startAttributes(name: string): Readonly<Record<string, CheckedValue>> {
  return Object.freeze({ [GEN_AI.operationName]: EXECUTE_TOOL, [GEN_AI.toolName]: name });
}

/**
 * Records a failed call. On a framework's span only `error.type` and the status: its owner
 * records the exception itself, and two exception events would read as two failures.
 */
function recordFailure(span: Span, error: unknown, borrowed: boolean): void {
  if (!borrowed) return recordError(span, error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : thrownText(error) });
  span.setAttribute('error.type', error instanceof Error ? error.name || 'Error' : 'Error');
}

/** A call without options (nothing to check). */
const NO_OPTIONS: ExecuteOptions = Object.freeze({});

/** The caller's options, checked: a wrong type is a bug in the caller, so the call rejects before any span. */
function checkedOptions(options: ExecuteOptions): ExecuteOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('dispatcher.execute(name, args, options): options must be an object { callId?, signal? }.');
  const { callId, signal } = options;
  if (callId !== undefined && typeof callId !== 'string') throw new TypeError('dispatcher.execute(): options.callId must be a string (the model’s tool call id).');
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('dispatcher.execute(): options.signal must be an AbortSignal.');
  return options;
}

function toText(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return '[unserializable]';
  }
}

function truncate(text: string): string {
  return text.length <= MAX_RECORDED_LENGTH ? text : `${text.slice(0, MAX_RECORDED_LENGTH)}…[truncated ${text.length - MAX_RECORDED_LENGTH} chars]`;
}
