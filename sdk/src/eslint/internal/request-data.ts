import type { Scope, SourceCode } from 'eslint';
import type * as ESTree from 'estree';
import { contains, dottedName, lastSegment, someNode } from './ast.js';

/** Calls that hand out the current request's context, state or tool system. */
const REQUEST_READERS = new Set(['getRequestContext', 'tryGetRequestContext', 'getFromContext', 'getSharedState', 'createToolSystem', 'bindToRequest']);
/** OpenTelemetry's readers of the active context (the request's trace and baggage). */
const ACTIVE_CONTEXT_READERS = new Set(['context.active', 'trace.getActiveSpan', 'propagation.getActiveBaggage']);
/** Names that make a key per tenant, user, session or request: `cache.set(ctx.tenantId, …)`, `byUser[userId]`. */
const REQUEST_KEY = /tenant|user|session|request|correlation|^req$|^ctx$/i;

/** Resolves an identifier to the variable it names (null or undefined when it names none of this file's). */
export type Resolve = (identifier: ESTree.Identifier) => Scope.Variable | null | undefined;

/**
 * Whether a written value comes from the request: it mentions a parameter or
 * local of the request function, `this` (a tool's per-request instance), or a
 * call that reads the active request (getRequestContext(), createToolSystem(),
 * context.active() …). A closure over request locals counts.
 */
export function isRequestData(values: readonly ESTree.Node[], requestScope: ESTree.Node, resolve: Resolve, keys: SourceCode.VisitorKeys): boolean {
  return values.some((value) =>
    someNode(value, keys, (node) => {
      if (node.type === 'ThisExpression') return true;
      if (node.type === 'CallExpression') return readsRequest(node.callee);
      if (node.type !== 'Identifier') return false;
      const variable = resolve(node);
      return variable?.defs.some((def) => contains(requestScope, def.name)) ?? false;
    }),
  );
}

/** Whether a write's keys make it per tenant, user or request: a cache keyed that way never serves one request's data to another. */
export function isKeyedByRequest(writeKeys: readonly ESTree.Node[], keys: SourceCode.VisitorKeys): boolean {
  return writeKeys.some((key) =>
    someNode(key, keys, (node) => (node.type === 'Identifier' && REQUEST_KEY.test(node.name)) || (node.type === 'CallExpression' && readsRequest(node.callee))),
  );
}

function readsRequest(callee: ESTree.Node): boolean {
  const name = dottedName(callee);
  return name !== undefined && (REQUEST_READERS.has(lastSegment(name)) || ACTIVE_CONTEXT_READERS.has(name));
}
