import type { RedactInfo } from '../tracing/types.js';
import type { Tool } from './internal/tool.js';

/** GenAI `gen_ai.tool.type`. */
export type ToolType = 'function' | 'extension' | 'datastore';

/** A Tool subclass: what createToolSystem() instantiates once per tool system. */
export interface ToolClass<T extends Tool = Tool> {
  new (): T;
  readonly toolName: string;
  readonly description: string;
  readonly type: ToolType;
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
}

/** One request's tools by name. */
export interface ToolRegistry {
  readonly registryId: string;
  /** The tool instance named `name`, or undefined. */
  get(name: string): Tool | undefined;
  has(name: string): boolean;
  list(): ToolInfo[];
}

/** Runs one request's tools, each inside an `execute_tool` span with run-time audits. */
export interface ToolDispatcher {
  readonly registryId: string;
  /**
   * Runs tool `name` with `args` in an `execute_tool {name}` span and resolves
   * to its result. Rejects with UnknownToolError for a name the registry lacks,
   * with the tool's own error unchanged when it fails, and with
   * IsolationViolationError in `audit: 'throw'` mode.
   *
   * A `run` that returns an async iterable (an `async *run()` generator) or a
   * web ReadableStream is a streaming tool: the result is a wrapper of the
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
