/**
 * Base class of every error isotrace throws. `name` is the concrete class
 * name, so logs and `instanceof` checks both say what went wrong.
 */
export class IsotraceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = this.constructor.name;
  }
}

/**
 * Thrown when code that needs the current request (getRequestContext(),
 * getSharedState(), a tool's `sharedState`, createToolSystem()) runs outside
 * one. The fix is always to run the code inside a request wrapper.
 */
export class RequestContextMissingError extends IsotraceError {
  constructor(what = 'this call') {
    super(
      `No request context for ${what}: wrap the call in withRequestContext(), ` +
        'or serve it through httpRequestContext() / handleWebSocketMessages(); ' +
        'for callback or pooled APIs that lose async context, bind the callback with bindToRequest().',
    );
  }
}

/** Thrown by startTracing() when isotrace is already running in this process. */
export class TracingAlreadyStartedError extends IsotraceError {
  constructor() {
    super('isotrace is already started in this process: call startTracing() once at start-up and reuse its handle (shut it down before starting again).');
  }
}

/**
 * The OpenTelemetry setup cannot give request isolation: startTracing() found
 * another setup already registered, or createIsotrace()'s attach() found a part
 * missing from the host's. The message says what is missing and the line that
 * adds it; `missing` names the parts (`span-processor`, `propagator`,
 * `baggage`, `context-manager`, `instrumentations`, …).
 */
export class IsotraceSetupError extends IsotraceError {
  readonly missing: readonly string[];
  constructor(message: string, missing: readonly string[]) {
    super(message);
    this.missing = missing;
  }
}

/** Thrown when a request API is used before startTracing() (or setupTestTracing()) ran. */
export class TracingNotStartedError extends IsotraceError {
  constructor(what: string) {
    super(`${what} needs isotrace to be started: call startTracing() once at process start (setupTestTracing() in tests).`);
  }
}

/** A SharedState value or key that is not allowed (values must be JSON data). */
export class SharedStateValueError extends IsotraceError {}

/**
 * The SharedState store cannot be reached (down, timed out). A read returned
 * nothing; a write that timed out after it was sent may or may not have been applied.
 */
export class SharedStateUnavailableError extends IsotraceError {}

/**
 * SharedState.update() gave up because other writers (other processes or
 * worker threads) kept changing the key between its read and its write.
 * Nothing was written and the store is reachable: retry later, or spread the
 * writes over more keys.
 */
export class SharedStateConflictError extends IsotraceError {}

/** expandVariables() met `${NAME}` with no value and no default. */
export class UnresolvedVariableError extends IsotraceError {
  readonly variables: readonly string[];
  /** `sources`: where the names were looked up, as the `env` option allowed (default: the request context or the environment). */
  constructor(variables: readonly string[], sources = 'the request context or the environment') {
    super(
      `Unresolved variable${variables.length > 1 ? 's' : ''} ${variables.map((v) => `\${${v}}`).join(', ')}: ` +
        `set it in ${sources}, or give a default with \${NAME:-default}.`,
    );
    this.variables = variables;
  }
}

/** loadConfig() could not read or parse its input. */
export class ConfigError extends IsotraceError {}

// What went wrong and the fix, per check: written for the client-visible message, so it holds no ids.
const VIOLATION_HINTS: ReadonlyMap<string, string> = new Map([
  ['context-owner', 'code used a tool system, tool or context that belongs to another request; create them inside each request and never keep them across requests'],
  ['trace', 'the active span belongs to another trace; do not run a request’s work under another request’s span'],
  ['baggage', 'the active baggage does not carry this request’s identity; do not set isotrace baggage entries by hand'],
  ['shared-state', 'a SharedState handle of another tenant or user was used; use the current request’s ctx.sharedState'],
  ['callback-owner', 'a callback registered by another request ran here; bind callbacks with bindToRequest() where they are registered'],
  ['event-owner', 'a progress event was emitted on another request’s event stream; call emitProgress() or getEventStream() inside each request and never keep a stream across requests'],
]);

/**
 * A run-time isolation audit failed while `audit: 'throw'` is set: code ran
 * with another request's context, trace, baggage or SharedState.
 *
 * Frameworks send error messages to clients, so `message` names only the
 * check and how to fix it: both sides' ids (one of them another request's)
 * are in `expected` and `actual`, and on the span's
 * `isotrace.isolation_violation` event. Log the fields, not just the message.
 */
export class IsolationViolationError extends IsotraceError {
  /** The check that failed: `context-owner`, `trace`, `baggage`, `shared-state`, … */
  readonly check: string;
  /** What the check required (may name another request). */
  readonly expected: string;
  /** What it found (may name another request). */
  readonly actual: string;
  /** The request whose code tripped the check (the active one), if any. */
  readonly requestId: string | undefined;
  constructor(check: string, expected: string, actual: string, options: { requestId?: string | undefined } = {}) {
    super(`Isolation violation (${check}): ${VIOLATION_HINTS.get(check) ?? 'this code saw another request’s context'}. The error’s expected/actual fields and the span’s isotrace.isolation_violation event say which.`);
    this.check = check;
    this.expected = expected;
    this.actual = actual;
    this.requestId = options.requestId;
  }
}

/** createToolSystem() or defineTool() was given something that is not a usable tool (a class, definition or factory): no name, a duplicate name, not a Tool. */
export class ToolDefinitionError extends IsotraceError {}

/** dispatcher.execute() was asked for a tool this request's registry does not have. */
export class UnknownToolError extends IsotraceError {
  readonly toolName: string;
  constructor(toolName: string, registryId: string, known: readonly string[]) {
    super(`No tool '${toolName}' in registry ${registryId}; it has: ${known.length ? known.join(', ') : '(none)'}.`);
    this.toolName = toolName;
  }
}

/** A worker thread died or was terminated while running a task (the task's own errors are rethrown as they are). */
export class WorkerTaskError extends IsotraceError {}
