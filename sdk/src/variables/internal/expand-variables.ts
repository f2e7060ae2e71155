import { UnresolvedVariableError } from '../../errors/errors.js';
import { tryGetRequestContext } from '../../context/internal/request-scope.js';
import type { RequestContext } from '../../context/types.js';
import type { ExpandOptions } from '../types.js';

// A variable name, matched where `${` (or the escaped `$${`) ends.
const NAME = /[A-Za-z_][A-Za-z0-9_.-]*/y;
// Where literal text ends: the next `$` or `}`.
const SPECIAL = /[$}]/g;

/** A template, parsed: literal text, `${NAME}` / `${NAME:-default}` references, and literal groups (`$${…}` escapes, unterminated references). */
type TemplateNode = string | { name: string; fallback: TemplateNode[] | undefined } | { prefix: string; nodes: TemplateNode[]; suffix: string };

/** A `${NAME:-` (or escaped `$${NAME:-`) whose closing `}` is still ahead. */
interface OpenReference {
  name: string;
  escaped: boolean;
  /** The text that opened it, kept when it never closes. */
  opening: string;
  nodes: TemplateNode[];
  outer: TemplateNode[];
}

/** The variables every request context provides (a Map: only these names, never Object.prototype's). */
const IDENTITY_VARIABLES = new Map<string, (ctx: RequestContext) => string | undefined>([
  ['REQUEST_ID', (ctx) => ctx.requestId],
  ['CORRELATION_ID', (ctx) => ctx.correlationId],
  ['TENANT_ID', (ctx) => ctx.tenantId],
  ['USER_ID', (ctx) => ctx.userId],
  ['JOB_ID', (ctx) => ctx.jobId],
  ['TRACE_ID', (ctx) => ctx.traceId],
]);

/** How deep expandVariables() follows nested objects and arrays. */
export const MAX_DEPTH = 1000;

/**
 * Replaces `${NAME}` and `${NAME:-default}` in a string, or in every string of
 * an object or array (returned as a copy). Names resolve from the current
 * request first (REQUEST_ID, CORRELATION_ID, TENANT_ID, USER_ID, JOB_ID,
 * TRACE_ID, then the request's values), then `process.env` as `env` allows:
 * `true` (default) any variable, `false` none (for templates holding user or
 * tenant text), or a list of the names allowed. Only own names resolve:
 * `${toString}` or `${__proto__}` is unresolved unless the request has such a
 * value. An empty value takes the default, as in a shell; a default may
 * itself hold variables (`${URL:-redis://${HOST}:6379}`). `$${NAME}` stays a
 * literal `${NAME}`. Values are inserted as they are, never expanded again.
 *
 * Throws UnresolvedVariableError naming every variable with no value and no
 * default; TypeError for a bad `env` option, and for an object that refers to
 * itself or is nested deeper than 1000 levels.
 *
 * ```ts
 * expandVariables('memory/${TENANT_ID}/${JOB_ID:-adhoc}');  // 'memory/acme/job-7'
 * expandVariables(userPrompt, { env: false });             // the request's variables only
 * ```
 */
export function expandVariables<T>(input: T, options: ExpandOptions = {}): T {
  return expandWith(input, options, 'expandVariables', (message) => new TypeError(`expandVariables(value): ${message}`));
}

/** expandVariables() for `caller`, with the error a value that refers to itself or is too deep gives. */
export function expandWith<T>(input: T, options: ExpandOptions, caller: string, invalid: (message: string) => Error): T {
  const readEnv = envReader(options, caller);
  const ctx = tryGetRequestContext();
  const missing = new Set<string>();
  const resolve = (name: string): string | undefined => fromRequest(name, ctx) ?? readEnv(name);
  const result = expandTree(input, (text) => expandString(text, resolve, missing), invalid);
  if (missing.size > 0) throw new UnresolvedVariableError([...missing], lookedUpIn(options));
  return result as T;
}

/** Where names are looked up under `env`, for the error that names the missing ones. */
function lookedUpIn({ env = true }: ExpandOptions): string {
  if (env === true) return 'the request context or the environment';
  if (env === false) return 'the request context (env: false never reads the environment)';
  return `the request context or the allowed environment variables (${env.join(', ') || 'none'})`;
}

/** Reads the environment as `env` allows; TypeError naming the option otherwise. */
export function envReader(options: ExpandOptions, caller: string): (name: string) => string | undefined {
  if (options === null || typeof options !== 'object') throw new TypeError(`${caller}(…, options): options must be an object such as { env: false }.`);
  const env: unknown = options.env ?? true;
  if (env === true) return readEnvironment;
  if (env === false) return () => undefined;
  if (Array.isArray(env) && env.every((name) => typeof name === 'string')) {
    const allowed = new Set<string>(env);
    return (name) => (allowed.has(name) ? readEnvironment(name) : undefined);
  }
  throw new TypeError(`${caller}(…, { env }): env must be true (any environment variable), false (none) or a list of the variable names allowed.`);
}

// process.env has a prototype: `${toString}` must not resolve to Object.prototype.toString.
function readEnvironment(name: string): string | undefined {
  return Object.hasOwn(process.env, name) ? process.env[name] : undefined;
}

function fromRequest(name: string, ctx: RequestContext | undefined): string | undefined {
  if (!ctx) return undefined;
  const identity = IDENTITY_VARIABLES.get(name)?.(ctx);
  if (identity !== undefined) return identity;
  const value = ctx.get(name);
  if (value === undefined || value === null) return undefined;
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** A value still to copy into `target[key]`, or the end of a container's contents. */
type Visit = { target: Record<string, unknown> | unknown[]; key: string | number; value: unknown; depth: number } | { leaving: object };

/**
 * Copies `input`, expanding every string in document order, without recursion
 * (a value may be nested as deep as a parser allows): a container inside
 * itself (a YAML alias to its own anchor) or deeper than MAX_DEPTH is an
 * error, never a stack overflow.
 */
function expandTree(input: unknown, expand: (text: string) => string, invalid: (message: string) => Error): unknown {
  const box: unknown[] = [undefined];
  const ancestors = new Set<object>();
  const pending: Visit[] = [{ target: box, key: 0, value: input, depth: 0 }];
  for (let visit = pending.pop(); visit; visit = pending.pop()) {
    if ('leaving' in visit) {
      ancestors.delete(visit.leaving);
      continue;
    }
    const { target, key, value, depth } = visit;
    if (typeof value === 'string') {
      define(target, key, expand(value));
    } else if (isContainer(value)) {
      if (ancestors.has(value)) throw invalid('it contains itself (a reference cycle).');
      if (depth >= MAX_DEPTH) throw invalid(`it is nested deeper than ${MAX_DEPTH} levels.`);
      ancestors.add(value);
      pending.push({ leaving: value });
      const entries: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((item, i) => [i, item]) : Object.entries(value);
      const copy: Record<string, unknown> | unknown[] = Array.isArray(value) ? new Array<unknown>(value.length) : {};
      // Every key now, in order (the slots are filled as the stack reaches them).
      for (const [k] of entries) define(copy, k, undefined);
      for (let i = entries.length - 1; i >= 0; i--) pending.push({ target: copy, key: entries[i]![0], value: entries[i]![1], depth: depth + 1 });
      define(target, key, copy);
    } else {
      define(target, key, value);
    }
  }
  return box[0];
}

// A data property even for the key `__proto__` (plain assignment would set the prototype instead).
function define(target: Record<string, unknown> | unknown[], key: string | number, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

function isContainer(value: unknown): value is object {
  return Array.isArray(value) || (value !== null && typeof value === 'object' && isPlainObject(value));
}

function expandString(text: string, resolve: (name: string) => string | undefined, missing: Set<string>): string {
  if (!text.includes('${')) return text;
  return render(parseTemplate(text), resolve, missing);
}

/**
 * Parses in one pass, without recursion (templates can be huge and deeply
 * nested): a default may hold references (`${URL:-redis://${HOST}:6379}`), so
 * each `${NAME:-` stays open until its own `}`. `$${NAME}` is a literal
 * `${NAME}`; a reference that never closes stays literal text.
 */
function parseTemplate(text: string): TemplateNode[] {
  const root: TemplateNode[] = [];
  const open: OpenReference[] = [];
  let nodes = root;
  let i = 0;
  while (i < text.length) {
    SPECIAL.lastIndex = i;
    const next = SPECIAL.exec(text);
    const at = next ? next.index : text.length;
    if (at > i) nodes.push(text.slice(i, at));
    if (!next) break;
    i = at;
    if (text[i] === '}') {
      const closing = open.pop();
      if (!closing) {
        nodes.push('}');
      } else {
        nodes = closing.outer;
        nodes.push(closing.escaped ? { prefix: `\${${closing.name}:-`, nodes: closing.nodes, suffix: '}' } : { name: closing.name, fallback: closing.nodes });
      }
      i++;
      continue;
    }
    // A `$`: the start of `${NAME}`, `${NAME:-`, or their escaped forms; else a literal `$`.
    const escaped = text[i + 1] === '$';
    const brace = escaped ? i + 2 : i + 1;
    NAME.lastIndex = brace + 1;
    const name = text[brace] === '{' ? NAME.exec(text)?.[0] : undefined;
    const after = brace + 1 + (name?.length ?? 0);
    if (name !== undefined && text[after] === '}') {
      nodes.push(escaped ? `\${${name}}` : { name, fallback: undefined });
      i = after + 1;
    } else if (name !== undefined && text.startsWith(':-', after)) {
      const reference: OpenReference = { name, escaped, opening: text.slice(i, after + 2), nodes: [], outer: nodes };
      open.push(reference);
      nodes = reference.nodes;
      i = after + 2;
    } else {
      nodes.push('$');
      i++;
    }
  }
  // References still open at the end were never references: their text stays as written.
  for (let reference = open.pop(); reference; reference = open.pop()) {
    reference.outer.push({ prefix: reference.opening, nodes: reference.nodes, suffix: '' });
  }
  return root;
}

/** Renders parsed nodes without recursion; defaults are expanded only when used. */
function render(nodes: TemplateNode[], resolve: (name: string) => string | undefined, missing: Set<string>): string {
  const out: string[] = [];
  const pending: TemplateNode[] = [...nodes].reverse();
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    if (typeof node === 'string') {
      out.push(node);
    } else if ('prefix' in node) {
      out.push(node.prefix);
      pending.push(node.suffix);
      for (let k = node.nodes.length - 1; k >= 0; k--) pending.push(node.nodes[k]!);
    } else {
      const value = resolve(node.name);
      if (value !== undefined && value !== '') out.push(value);
      else if (node.fallback !== undefined) for (let k = node.fallback.length - 1; k >= 0; k--) pending.push(node.fallback[k]!);
      else if (value === undefined) missing.add(node.name);
    }
  }
  return out.join('');
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
