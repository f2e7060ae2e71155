import { UnresolvedVariableError } from '../../errors/errors.js';
import { tryGetRequestContext } from '../../context/internal/request-scope.js';
import type { RequestContext } from '../../context/types.js';

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
 * only from the environment. An empty value takes the default, as in a shell;
 * a default may itself hold variables (`${URL:-redis://${HOST}:6379}`).
 * `$${NAME}` stays a literal `${NAME}`. Values are inserted as they are,
 * never expanded again.
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
