import { tryGetRequestContext } from '../../context/internal/request-scope.js';
import type { RequestContext } from '../../context/types.js';
import { RequestContextMissingError, ToolDefinitionError } from '../../errors/errors.js';
import type { ToolCall, ToolDefinition, ToolSystem, ToolSystemOptions } from '../types.js';
import { defineTool } from './define-tool.js';
import type { Dispatcher } from './dispatcher.js';
import { createToolSystem } from './tool-system.js';

/** One framework call, readied by AuditedToolSet.open(). */
export interface OpenedCall {
  /** The calling request's own dispatcher. */
  readonly dispatcher: Dispatcher;
  /** The call's own signal (following the framework's): give it to the dispatcher, it carries the call to the tool. */
  readonly signal: AbortSignal;
}

/**
 * Internal (the framework adapters' isotraceTools()): the part every adapter's wrapped tool set
 * shares. The adapter registers each framework tool with add(); each framework call then goes
 * through open(): the calling request's own dispatcher and a signal of the call's own, under
 * which the tool, inside its span, finds the framework's arguments again (`Pending`).
 */
export class AuditedToolSet<Pending> {
  readonly #definitions: ToolDefinition[] = [];
  readonly #options: ToolSystemOptions;
  // Keyed by the request: a request's system goes with it; no request sees another's.
  readonly #systems = new WeakMap<RequestContext, ToolSystem>();
  // Keyed by the signal made for each call: what the dispatcher hands the tool back, so a call never gets another's arguments.
  readonly #calls = new WeakMap<AbortSignal, Pending>();

  constructor(options: ToolSystemOptions) {
    this.#options = options;
  }

  /**
   * Registers a framework tool: inside its span, `run` gets the arguments, the framework call
   * that reached it and the call. A call that did not come through open() throws
   * `Error(notThroughFramework)` and the tool never runs.
   */
  add(name: string, description: unknown, notThroughFramework: string, run: (args: unknown, pending: Pending, call: ToolCall) => unknown): void {
    this.#definitions.push(
      defineTool({
        name,
        description: typeof description === 'string' ? description : '',
        execute: (args, call) => run(args, this.#take(call, notThroughFramework), call),
      }),
    );
  }

  /** Throws ToolDefinitionError for two tools of one name: found at wrapping, not at some request's first call. */
  assertDistinctNames(): void {
    const names = this.#definitions.map(({ name }) => name);
    const duplicate = names.find((name, index) => names.indexOf(name) !== index);
    if (duplicate !== undefined) throw new ToolDefinitionError(`isotraceTools: two tools are named '${duplicate}'.`);
  }

  /**
   * Readies one framework call of `what`: the calling request's dispatcher (its tool system is
   * made at its first call), and a signal of the call's own, following `frameworkSignal`, which
   * carries `pending` to the tool. Throws RequestContextMissingError outside a request.
   */
  open(what: string, frameworkSignal: unknown, pending: Pending): OpenedCall {
    const owner = tryGetRequestContext();
    if (!owner) throw new RequestContextMissingError(what);
    const dispatcher = this.#systemOf(owner).dispatcher as Dispatcher;
    const signal = frameworkSignal instanceof AbortSignal ? AbortSignal.any([frameworkSignal]) : new AbortController().signal;
    this.#calls.set(signal, pending);
    return { dispatcher, signal };
  }

  #take(call: ToolCall, notThroughFramework: string): Pending {
    const pending = this.#calls.get(call.signal);
    if (pending === undefined) throw new Error(notThroughFramework);
    this.#calls.delete(call.signal);
    return pending;
  }

  #systemOf(owner: RequestContext): ToolSystem {
    let system = this.#systems.get(owner);
    if (!system) {
      system = createToolSystem(this.#definitions, this.#options);
      this.#systems.set(owner, system);
    }
    return system;
  }
}

/**
 * A mark on what an adapter's isotraceTools() made: wrapping a marked tool again must not run
 * each call as two tool calls. Non-enumerable, so it is never sent anywhere with the tool.
 */
export class AuditedMark {
  readonly #symbol: symbol;

  constructor(description: string) {
    this.#symbol = Symbol(description);
  }

  set(target: object): void {
    Object.defineProperty(target, this.#symbol, { value: true });
  }

  isOn(target: unknown): boolean {
    return (typeof target === 'object' || typeof target === 'function') && target !== null && (target as Record<symbol, unknown>)[this.#symbol] === true;
  }
}

/** Throws TypeError for isotraceTools() options that are not { recordToolArguments?: boolean, redact?: function }. */
export function checkToolSetOptions(options: ToolSystemOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('isotraceTools(tools, options): options must be an object { recordToolArguments?, redact? }.');
  const { recordToolArguments, redact } = options;
  if (recordToolArguments !== undefined && typeof recordToolArguments !== 'boolean') throw new TypeError('isotraceTools(): options.recordToolArguments must be a boolean.');
  if (redact !== undefined && typeof redact !== 'function') throw new TypeError('isotraceTools(): options.redact must be a function (value, info) => value.');
}
