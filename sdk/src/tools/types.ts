import type { RequestContext } from '../context/types.js';
import type { ProgressEvent } from '../events/types.js';
import type { RedactInfo } from '../tracing/types.js';
import type { Tool } from './internal/tool.js';

/** GenAI `gen_ai.tool.type`. */
export type ToolType = 'function' | 'extension' | 'datastore';

/**
 * A Tool subclass whose constructor takes no arguments: what createToolSystem()
 * instantiates once per tool system. A tool that needs constructor arguments
 * is given as a ToolFactory instead (`() => new Search(index)`).
 */
export interface ToolClass<T extends Tool = Tool> {
  new (): T;
  readonly toolName: string;
  readonly description: string;
  readonly type: ToolType;
}

/**
 * Makes one tool instance for one tool system: `(ctx) => new Search(indexOf(ctx.tenantId))`.
 * createToolSystem() calls it once per system with the owning request and binds
 * that request to the instance it returns, so return a new instance every
 * time (one already owned by a tool system is rejected).
 */
export type ToolFactory = (context: RequestContext) => Tool;

/** What createToolSystem() accepts for each tool: a Tool class, a defineTool() definition or a factory. */
export type ToolSource = ToolClass | ToolDefinition | ToolFactory;

/**
 * One call of a tool, the second argument of `execute` (defineTool()) and of
 * `run` (Tool classes).
 */
export interface ToolCall {
  /** `gen_ai.tool.call.id`: the model's call id given to dispatcher.execute(), or a generated one. */
  readonly callId: string;
  /**
   * The caller's `options.signal`, or a signal that never aborts when none was
   * given. Pass it on (fetch, timers, child tools) so an aborted call stops:
   * the dispatcher does not abandon a tool that ignores it, so the span always
   * covers the tool's actual work.
   */
  readonly signal: AbortSignal;
  /**
   * The request that owns the tool system (not the ambient one). Reading it
   * from another request records a `context-owner` violation.
   */
  readonly context: RequestContext;
  /**
   * Sends a progress event to the owning request's own connection (its
   * WebSocket or server-sent-events response): see emitProgress(). Returns
   * false when it was not delivered; from another request it is refused with
   * an `event-owner` violation. Throws TypeError for an event that is not a
   * JSON object.
   */
  emit(event: ProgressEvent): boolean;
}

/** What defineTool() takes. */
export interface ToolDefinitionInit<Args = unknown, Result = unknown> {
  /** `gen_ai.tool.name`: a non-empty string, unique within a tool system. */
  name: string;
  /** `gen_ai.tool.description`; default ''. */
  description?: string;
  /** `gen_ai.tool.type`; default 'function'. */
  type?: ToolType;
  /**
   * Runs the tool inside its `execute_tool` span. May return a value, a
   * promise, or a stream (an `async *execute()` generator, a web
   * ReadableStream, a node:stream Readable): see ToolDispatcher.execute().
   */
  execute(args: Args, call: ToolCall): Result | Promise<Result>;
}

declare const madeByDefineTool: unique symbol;

/**
 * A tool made by defineTool(): an immutable, module-level description that
 * holds no request state. createToolSystem() binds it to its own request.
 */
export interface ToolDefinition<Args = unknown, Result = unknown> {
  readonly [madeByDefineTool]: true;
  readonly name: string;
  readonly description: string;
  readonly type: ToolType;
  execute(args: Args, call: ToolCall): Result | Promise<Result>;
}

/** How a tool describes itself. */
export interface ToolInfo {
  name: string;
  description: string;
  type: ToolType;
}

/** Per-system overrides of startTracing()'s recording options. */
export interface ToolSystemOptions {
  recordToolArguments?: boolean;
  redact?: (value: unknown, info: RedactInfo) => unknown;
}

/** Options of one tool call. */
export interface ExecuteOptions {
  /** `gen_ai.tool.call.id`; generated when absent (the model's call id when you have one). */
  callId?: string;
  /**
   * Aborts the call: handed to the tool as `call.signal`. An already aborted
   * signal rejects with its reason before the tool runs; once the tool runs,
   * stopping is up to the tool (it rejects with the signal's AbortError).
   */
  signal?: AbortSignal;
}

/** One request's tools by name. */
export interface ToolRegistry {
  readonly registryId: string;
  /** The tool instance named `name` (a defineTool() definition's bound instance too), or undefined. */
  get(name: string): Tool | undefined;
  has(name: string): boolean;
  list(): ToolInfo[];
}

/** Runs one request's tools, each inside an `execute_tool` span with run-time audits. */
export interface ToolDispatcher {
  readonly registryId: string;
  /**
   * Runs tool `name` with `args` in an `execute_tool {name}` span and resolves
   * to its result. The tool gets a ToolCall with `options.callId` (else a
   * generated id) and `options.signal` (else one that never aborts). Rejects
   * with UnknownToolError for a name the registry lacks, with TypeError for a
   * non-string `callId` or a `signal` that is not an AbortSignal, with the
   * signal's reason when it is already aborted, with the tool's own error
   * unchanged when it fails, and with IsolationViolationError in
   * `audit: 'throw'` mode.
   *
   * A tool that returns an async iterable (an `async *run()` or
   * `async *execute()` generator) or a web ReadableStream is a streaming
   * tool: the result is a wrapper of the
   * same kind (a node:stream Readable stays a Readable) yielding the very same
   * values, the span stays open until the caller has consumed, cancelled
   * (`break`, `return()`, `cancel()`) or failed the stream, the tool's own
   * work runs inside the span (its child spans are the tool span's children)
   * and the end-of-call audits run where the stream was consumed. The span
   * gets `isotrace.stream.outcome` (`completed` | `cancelled` | `failed`) and
   * `isotrace.stream.items`; an iteration error is recorded like a thrown one
   * and reaches the consumer unchanged. Arrays, strings and other sync
   * iterables are plain results.
   */
  execute<R = unknown>(name: string, args?: unknown, options?: ExecuteOptions): Promise<R>;
}

/** One request's isolated tool system (the seeds' per-user registry + dispatcher). */
export interface ToolSystem {
  /** `user_<userId>_<requestId>_<n>`: unique, and says whose it is. */
  readonly registryId: string;
  readonly correlationId: string;
  readonly registry: ToolRegistry;
  readonly dispatcher: ToolDispatcher;
  readonly tools: readonly Tool[];
}

/**
 * What invokeAgent() takes: who the agent is, for its `invoke_agent {name}`
 * span and for the tool spans under it.
 */
export interface InvokeAgentOptions {
  /** `gen_ai.agent.name` and the span name `invoke_agent {name}`: a non-empty string. */
  name: string;
  /** `gen_ai.agent.id`, when the agent has a stable id. */
  id?: string;
  /** `gen_ai.agent.description`. */
  description?: string;
  /**
   * `gen_ai.conversation.id`: the chat session or thread this run belongs to.
   * Default: the request's `conversationId` (withRequestContext() init), else none.
   */
  conversationId?: string;
  /**
   * `gen_ai.provider.name` of the model the agent calls (`openai`, `anthropic`,
   * `aws.bedrock`, …). The GenAI conventions require it: give it when you know it.
   */
  providerName?: string;
}
