import type { Rule, Scope } from 'eslint';
import type * as ESTree from 'estree';
import type { NoRequestStateInModuleScopeOptions } from '../types.js';
import { contains, enclosingFunction, rangeOf, type FunctionNode, type Node } from './ast.js';
import { isKeyedByRequest, isRequestData, type Resolve } from './request-data.js';
import { createRequestScopeFinder } from './request-scopes.js';
import { classifyReference, type StateRead, type StateTarget, type StateWrite } from './state-access.js';

const FIX = 'Keep per-request data in a local variable or in the request context (getRequestContext().set/get)';

/** Declarations whose bindings outlive a request when they sit at module level. */
const SHARED_DEFINITIONS = new Set(['Variable', 'ClassName', 'FunctionName', 'ImportBinding']);
const LOOPS = new Set(['ForStatement', 'ForInStatement', 'ForOfStatement', 'WhileStatement', 'DoWhileStatement']);

/** A point where a request function gives way to other requests: `await`, `yield`, each turn of `for await`. */
interface Suspension {
  readonly node: Node;
  readonly position: number;
  readonly fn: Node | null;
}

/** What one request function reads and writes of shared state. */
interface ScopeAccesses {
  readonly writes: StateWrite[];
  readonly reads: StateRead[];
}

/**
 * `isotrace/no-request-state-in-module-scope`: module-level mutable state
 * (and static fields of classes) written inside a request scope, where
 * another request can see it. See docs/eslint.md for what counts as a request
 * scope and what is reported.
 */
export const noRequestStateInModuleScope: Rule.RuleModule = {
  meta: {
    type: 'problem',
    docs: {
      description: 'Disallow request data in module-level state written inside request handlers, tools and worker tasks',
      recommended: true,
      url: 'https://github.com/isotrace/isotrace/blob/main/docs/eslint.md',
    },
    schema: [
      {
        type: 'object',
        properties: {
          requestHandlerCalls: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
          requestFunctions: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
        },
        additionalProperties: false,
      },
    ],
    defaultOptions: [{ requestHandlerCalls: [], requestFunctions: [] }],
    messages: {
      overwrittenAfterAwait: `{{what}} is written inside {{scope}} and read again after an await: another request may have overwritten it in between. ${FIX}.`,
      lazyFromRequest: `{{what}} is initialised once inside {{scope}} from this request's data: the first request's value is kept and used by every later request. Create it per request (a local variable; createToolSystem() inside the request) or read it from the request context (getRequestContext(), this.sharedState).`,
      requestDataStored: `{{what}} is written inside {{scope}} with this request's data, where every other request can read it. ${FIX}; a cache shared across requests must be keyed by tenant or user (cache.set(ctx.tenantId, …)).`,
    },
  },

  create(context) {
    const given = (context.options[0] ?? {}) as NoRequestStateInModuleScopeOptions;
    const finder = createRequestScopeFinder(context, { requestHandlerCalls: given.requestHandlerCalls ?? [], requestFunctions: given.requestFunctions ?? [] });
    const suspensions: Suspension[] = [];
    const suspendsAt = (node: Node, position: number): void => void suspensions.push({ node, position, fn: enclosingFunction(node) });

    return {
      ...finder.listeners,
      AwaitExpression: (node) => suspendsAt(node, rangeOf(node)[0]),
      YieldExpression: (node) => suspendsAt(node, rangeOf(node)[0]),
      ForOfStatement: (node) => {
        if (node.await) suspendsAt(node, rangeOf(node.right)[1]);
      },
      'Program:exit'() {
        new RequestStateCheck(context, finder.scopes(), suspensions).run();
      },
    };
  },
};

/** The check over one file, once its request scopes and suspension points are known. */
class RequestStateCheck {
  readonly #context: Rule.RuleContext;
  readonly #scopes: Map<FunctionNode, string>;
  readonly #suspensions: Suspension[];
  readonly #resolved = new Map<ESTree.Node, Scope.Variable | null>();

  constructor(context: Rule.RuleContext, scopes: Map<FunctionNode, string>, suspensions: Suspension[]) {
    this.#context = context;
    this.#scopes = scopes;
    this.#suspensions = suspensions;
  }

  run(): void {
    if (this.#scopes.size === 0) return;
    const { scopeManager } = this.#context.sourceCode;
    for (const scope of scopeManager.scopes) for (const reference of scope.references) this.#resolved.set(reference.identifier as ESTree.Node, reference.resolved);
    for (const [scope, accesses] of this.#accessesByScope()) this.#checkScope(scope, accesses);
  }

  /** Every read and write of shared state, grouped by the innermost request scope it happens in. */
  #accessesByScope(): Map<FunctionNode, ScopeAccesses> {
    const byScope = new Map<FunctionNode, ScopeAccesses>();
    for (const variable of this.#sharedVariables()) {
      for (const reference of variable.references) {
        if ((reference as { isTypeReference?: boolean }).isTypeReference) continue;
        const scope = this.#requestScopeOf(reference.identifier as unknown as Node);
        if (!scope || variable.defs.some((def) => contains(scope, def.name))) continue;
        const accesses = byScope.get(scope) ?? { writes: [], reads: [] };
        byScope.set(scope, accesses);
        for (const access of classifyReference(reference, this.#context.sourceCode)) {
          if (access.kind === 'write') accesses.writes.push(access);
          else accesses.reads.push(access);
        }
      }
    }
    return byScope;
  }

  /** Module-level bindings, and classes declared anywhere (their static fields are shared by every instance). */
  #sharedVariables(): Set<Scope.Variable> {
    const shared = new Set<Scope.Variable>();
    for (const scope of this.#context.sourceCode.scopeManager.scopes) {
      const moduleLevel = scope.block.type === 'Program';
      for (const variable of scope.variables) {
        const type = variable.defs[0]?.type;
        if (type === 'ClassName' || (moduleLevel && type !== undefined && SHARED_DEFINITIONS.has(type))) shared.add(variable);
      }
    }
    return shared;
  }

  #requestScopeOf(node: Node): FunctionNode | undefined {
    for (let current: Node | null = node.parent; current; current = current.parent) {
      if (this.#scopes.has(current as FunctionNode)) return current as FunctionNode;
    }
    return undefined;
  }

  /** Reports the first offending write of each shared target in one request scope. */
  #checkScope(scope: FunctionNode, { writes, reads }: ScopeAccesses): void {
    const reported = new Set<string>();
    const { visitorKeys } = this.#context.sourceCode;
    const resolve: Resolve = (identifier) => this.#resolved.get(identifier);
    const suspensions = this.#suspensions.filter((suspension) => this.#requestScopeOf(suspension.node) === scope);
    for (const write of writes) {
      const key = targetKey(write.target);
      if (reported.has(key) || isKeyedByRequest(write.keys, visitorKeys)) continue;
      const fromRequest = isRequestData(write.values, scope, resolve, visitorKeys);
      const messageId =
        write.form === 'lazy'
          ? fromRequest ? 'lazyFromRequest' : undefined
          : readAfterSuspension(write, reads, suspensions) ? 'overwrittenAfterAwait'
          : fromRequest && (write.form === 'assign' || write.form === 'store') ? 'requestDataStored'
          : undefined;
      if (messageId === undefined) continue;
      reported.add(key);
      this.#context.report({ node: write.node, messageId, data: { what: describeTarget(write.target), scope: this.#scopes.get(scope) ?? 'a request scope' } });
    }
  }
}

/** Whether the state `write` changed is read after the request function may have given way to another request. */
function readAfterSuspension(write: StateWrite, reads: readonly StateRead[], suspensions: readonly Suspension[]): boolean {
  const writeEnd = rangeOf(write.node)[1];
  return reads.some(
    (read) =>
      sameState(write.target, read.target) &&
      suspensions.some(
        (suspension) =>
          runsBefore(suspension, read.node as Node) &&
          ((suspension.position >= writeEnd && suspension.position < rangeOf(read.node)[0]) || inOneLoop(suspension, write.node, read.node)),
      ),
  );
}

/** A suspension precedes a read only in the read's own function or one enclosing it (a sibling callback's await does not). */
function runsBefore(suspension: Suspension, read: Node): boolean {
  for (let fn: Node | null = enclosingFunction(read); fn; fn = enclosingFunction(fn)) if (fn === suspension.fn) return true;
  return false;
}

/** A loop around the write, the await and the read: the next turn reads after this turn's await. */
function inOneLoop(suspension: Suspension, write: ESTree.Node, read: ESTree.Node): boolean {
  for (let node: Node | null = suspension.node; node && node !== suspension.fn; node = node.parent) {
    if (LOOPS.has(node.type) && contains(node, write) && contains(node, read)) return true;
  }
  return false;
}

function sameState(written: StateTarget, read: StateTarget): boolean {
  return declarationOf(written) === declarationOf(read) && (written.property === undefined || read.property === undefined || written.property === read.property);
}

/** A class's name has two bindings (outside and inside its body): both lead to one declaration. */
function declarationOf(target: StateTarget): ESTree.Node | undefined {
  return target.variable.defs[0]?.name;
}

function targetKey(target: StateTarget): string {
  const declaration = declarationOf(target);
  return `${declaration ? rangeOf(declaration)[0] : target.variable.name}:${target.property ?? ''}`;
}

function describeTarget(target: StateTarget): string {
  const name = target.property === undefined ? target.variable.name : `${target.variable.name}.${target.property}`;
  const isClass = target.variable.defs[0]?.type === 'ClassName';
  return isClass && target.property !== undefined ? `Static field \`${name}\`` : `Module-level \`${name}\``;
}
