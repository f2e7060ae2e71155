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

/** expandVariables() met `${NAME}` with no value and no default. */
export class UnresolvedVariableError extends IsotraceError {
  readonly variables: readonly string[];
  constructor(variables: readonly string[]) {
    super(
      `Unresolved variable${variables.length > 1 ? 's' : ''} ${variables.map((v) => `\${${v}}`).join(', ')}: ` +
        'set it in the request context or the environment, or give a default with ${NAME:-default}.',
    );
    this.variables = variables;
  }
}

/** loadConfig() could not read or parse its input. */
export class ConfigError extends IsotraceError {}

/**
 * A run-time isolation audit failed while `audit: 'throw'` is set: code ran
 * with another request's context, trace, baggage or SharedState.
 */
export class IsolationViolationError extends IsotraceError {
  readonly check: string;
  readonly expected: string;
  readonly actual: string;
  constructor(check: string, expected: string, actual: string) {
    super(`Isolation violation (${check}): expected ${expected}, actual ${actual}.`);
    this.check = check;
    this.expected = expected;
    this.actual = actual;
  }
}

/** createToolSystem() was given something that is not a usable tool class (no toolName, a duplicate name, not a Tool). */
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
