import type { Tool as AiTool, ToolExecutionOptions, ToolSet } from 'ai';
import { AuditedMark, AuditedToolSet, checkToolSetOptions, type OpenedCall } from '../../tools/internal/audited-tool-set.js';
import type { IsotraceToolsOptions } from '../types.js';
import { deferredStream } from './deferred-stream.js';
import { sdkToolSpan } from './sdk-tool-span.js';

/**
 * Marks the `execute` functions isotraceTools() made: wrapping one again would run it as two
 * tool calls. On the function, not the tool: a copy (`{ ...tool }`) keeps it, a replaced
 * `execute` loses it and is wrapped.
 */
const WRAPPED = new AuditedMark('isotrace.ai-sdk.execute');

type Execute = (input: unknown, options: ToolExecutionOptions<unknown>) => unknown;

/** One `execute` of the AI SDK on its way through the dispatcher to the app's own `execute`. */
interface PendingCall {
  readonly options: ToolExecutionOptions<unknown>;
  invoked: boolean;
  result: unknown;
}

/**
 * Wraps an AI SDK 7 ToolSet so that every `execute` runs as an audited
 * isotrace tool call of the request that called generateText() /
 * streamText(): one `execute_tool {name}` span per call with the model's call
 * id as `gen_ai.tool.call.id`, the run-time isolation audits at its start and
 * end, `isotrace.registry_id` and `isotrace.audit.result`. Parallel tool calls
 * each get their own span; a streaming tool (an `async *execute()`, whose
 * yields the SDK reports as preliminary results) keeps streaming and its span
 * covers the whole consumption.
 *
 * When the AI SDK's own OpenTelemetry integration (`@ai-sdk/otel`) is on, the
 * call has a single span: isotrace adds its attributes and audits to the
 * SDK's `execute_tool` span instead of opening a second one.
 *
 * Each request gets its own tool system, made at its first tool call, so the
 * returned set may be built once at module level. Outside a request the tool
 * does not run: the call fails with RequestContextMissingError (the SDK
 * reports it as a `tool-error`). Tools without `execute` are kept as they
 * are. Throws TypeError for a `tools` that is not an object of tools or a bad
 * option, and ToolDefinitionError for an empty tool name.
 *
 * ```ts
 * import { generateText, tool, isStepCount } from 'ai';
 * import { isotraceTools } from 'isotrace/ai-sdk';
 *
 * const tools = isotraceTools({
 *   weather: tool({
 *     description: 'Current weather for a city',
 *     inputSchema: z.object({ city: z.string() }),
 *     execute: async ({ city }, { abortSignal }) => getWeather(city, getRequestContext().tenantId, abortSignal),
 *   }),
 * });
 *
 * await withRequestContext({ tenantId, userId }, () =>
 *   generateText({ model, tools, prompt, stopWhen: isStepCount(5) }));
 * ```
 */
export function isotraceTools<TOOLS extends ToolSet>(tools: TOOLS, options: IsotraceToolsOptions = {}): TOOLS {
  if (typeof tools !== 'object' || tools === null || Array.isArray(tools)) throw new TypeError('isotraceTools(tools): tools must be an AI SDK ToolSet, an object of tools by name.');
  checkToolSetOptions(options);
  return new AiSdkToolSet(tools, options).tools as TOOLS;
}

/** The wrapped tools of one isotraceTools() call; their tool system per request is the AuditedToolSet's. */
class AiSdkToolSet {
  readonly tools: Record<string, AiTool> = {};
  readonly #audited: AuditedToolSet<PendingCall>;

  constructor(tools: ToolSet, options: IsotraceToolsOptions) {
    this.#audited = new AuditedToolSet(options);
    for (const [name, tool] of Object.entries(tools)) {
      if (typeof tool !== 'object' || tool === null) throw new TypeError(`isotraceTools(tools): tools['${name}'] is not an AI SDK tool.`);
      this.tools[name] = this.#wrap(name, tool);
    }
  }

  #wrap(name: string, tool: AiTool): AiTool {
    const original = tool.execute as Execute | undefined;
    if (typeof original !== 'function' || WRAPPED.isOn(original)) return tool;
    const notThroughSdk = 'isotraceTools(): this tool runs only through its AI SDK execute(); the call has no AI SDK options.';
    this.#audited.add(name, tool.description, notThroughSdk, (input, pending) => runOriginal(tool, original, input, pending));
    // Same prototype and properties (schemas, needsApproval, toModelOutput, …); only execute changes.
    const execute = (input: unknown, sdkOptions: ToolExecutionOptions<unknown>): unknown => this.#execute(name, input, sdkOptions);
    WRAPPED.set(execute);
    const wrapped = Object.create(Object.getPrototypeOf(tool), Object.getOwnPropertyDescriptors(tool)) as AiTool;
    Object.defineProperty(wrapped, 'execute', { value: execute, enumerable: true, writable: true, configurable: true });
    return wrapped;
  }

  /** The AI SDK's `execute`: a dispatcher call of the current request's tool system, inside the SDK's span when it has one. */
  #execute(name: string, input: unknown, sdkOptions: ToolExecutionOptions<unknown>): unknown {
    const pending: PendingCall = { options: sdkOptions, invoked: false, result: undefined };
    let opened: OpenedCall;
    try {
      opened = this.#audited.open(`the AI SDK tool '${name}'`, sdkOptions?.abortSignal, pending);
    } catch (error) {
      return Promise.reject(error);
    }
    const { dispatcher, signal } = opened;
    const callOptions = { callId: sdkOptions?.toolCallId, signal };
    const sdkSpan = sdkToolSpan(name, sdkOptions?.toolCallId);
    const settled = sdkSpan ? dispatcher.executeInSpan(sdkSpan, name, input, callOptions) : dispatcher.execute(name, input, callOptions);
    // The dispatcher has invoked the tool by now. The SDK streams only what execute returns at once, so a stream goes back as one.
    return pending.invoked && isAsyncIterable(pending.result) ? deferredStream(settled as Promise<AsyncIterable<unknown>>) : settled;
  }
}

/** Inside the tool span: the app's own `execute`, with the SDK's options unchanged. */
function runOriginal(tool: AiTool, original: Execute, input: unknown, pending: PendingCall): unknown {
  pending.invoked = true;
  pending.result = original.call(tool, input, pending.options);
  return pending.result;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown> | null | undefined)?.[Symbol.asyncIterator] === 'function';
}
