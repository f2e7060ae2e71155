import { UnresolvedVariableError } from '../../errors/errors.js';
import { tryGetRequestContext } from '../../context/internal/request-scope.js';
import type { RequestContext } from '../../context/types.js';

// ${NAME} or ${NAME:-default}; "$${" is an escaped, literal "${".
const VARIABLE = /\$(\$?)\{([A-Za-z_][A-Za-z0-9_.-]*)(?::-([^}]*))?\}/g;

/** The variables every request context provides. */
const IDENTITY_VARIABLES: Record<string, (ctx: RequestContext) => string | undefined> = {
  REQUEST_ID: (ctx) => ctx.requestId,
  CORRELATION_ID: (ctx) => ctx.correlationId,
  TENANT_ID: (ctx) => ctx.tenantId,
  USER_ID: (ctx) => ctx.userId,
  JOB_ID: (ctx) => ctx.jobId,
  TRACE_ID: (ctx) => ctx.traceId,
};

/**
 * Replaces `${NAME}` and `${NAME:-default}` in a string, or in every string of
 * an object or array (returned as a copy). Names resolve from the current
 * request first (REQUEST_ID, CORRELATION_ID, TENANT_ID, USER_ID, JOB_ID,
 * TRACE_ID, then the request's values), then `process.env`; outside a request
 * only from the environment. An empty value takes the default, as in a shell.
 * `$${NAME}` stays a literal `${NAME}`.
 *
 * Throws UnresolvedVariableError naming every variable with no value and no default.
 *
 * ```ts
 * expandVariables('memory/${TENANT_ID}/${JOB_ID:-adhoc}');  // 'memory/acme/job-7'
 * ```
 */
export function expandVariables<T>(input: T): T {
  const ctx = tryGetRequestContext();
  const missing = new Set<string>();
  const result = expandValue(input, (name) => lookup(name, ctx), missing);
  if (missing.size > 0) throw new UnresolvedVariableError([...missing]);
  return result as T;
}

function expandValue(value: unknown, resolve: (name: string) => string | undefined, missing: Set<string>): unknown {
  if (typeof value === 'string') return expandString(value, resolve, missing);
  if (Array.isArray(value)) return value.map((item) => expandValue(item, resolve, missing));
  if (value !== null && typeof value === 'object' && isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, expandValue(item, resolve, missing)]));
  }
  return value;
}

function expandString(text: string, resolve: (name: string) => string | undefined, missing: Set<string>): string {
  return text.replace(VARIABLE, (whole: string, escaped: string, name: string, fallback: string | undefined) => {
    if (escaped) return whole.slice(1);
    const value = resolve(name);
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    if (value === undefined) missing.add(name);
    return '';
  });
}

function lookup(name: string, ctx: RequestContext | undefined): string | undefined {
  if (ctx) {
    const identity = IDENTITY_VARIABLES[name]?.(ctx);
    if (identity !== undefined) return identity;
    const value = ctx.get(name);
    if (value !== undefined && value !== null) return typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return process.env[name];
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
