import type { Rule, Scope } from 'eslint';
import type * as ESTree from 'estree';
import type { NoRequestStateInModuleScopeOptions } from '../types.js';
import { dottedName, isFunction, keyName, lastSegment, unwrap, type FunctionNode } from './ast.js';

/**
 * isotrace calls whose function arguments run once per request: the handler of
 * withRequestContext(init, fn), httpRequestContext(options, fn),
 * handleWebSocketMessages(ws, options, fn), runRequest(init, fn), the task of
 * defineWorkerTask(fn) and a callback bound by bindToRequest(fn).
 */
const ISOTRACE_HANDLER_CALLS = new Map([
  ['withRequestContext', 'a request handler (withRequestContext)'],
  ['httpRequestContext', 'a request handler (httpRequestContext)'],
  ['handleWebSocketMessages', 'a WebSocket message handler (handleWebSocketMessages)'],
  ['runRequest', 'a request handler (runRequest)'],
  ['defineWorkerTask', 'a worker task (defineWorkerTask)'],
  ['bindToRequest', 'a request-bound callback (bindToRequest)'],
]);

/** The request scopes of one file: each function that runs once per request, with how the report names it. */
export type RequestScopes = Map<FunctionNode, string>;

/** Finds request scopes while ESLint walks the file; `scopes()` answers once the walk is over. */
export interface RequestScopeFinder {
  readonly listeners: Rule.RuleListener;
  scopes(): RequestScopes;
}

export function createRequestScopeFinder(context: Rule.RuleContext, options: Required<NoRequestStateInModuleScopeOptions>): RequestScopeFinder {
  const found: RequestScopes = new Map();
  const classes: Array<ESTree.ClassDeclaration | ESTree.ClassExpression> = [];
  const namedFunctions = new Set(options.requestFunctions);
  const add = (fn: FunctionNode | undefined, label: string): void => {
    if (fn && !found.has(fn)) found.set(fn, label);
  };
  const addIfNamed = (name: string | undefined, value: ESTree.Node | null | undefined): void => {
    if (name !== undefined && namedFunctions.has(name) && value && isFunction(unwrap(value))) add(unwrap(value) as FunctionNode, `the request function ${name}`);
  };

  const listeners: Rule.RuleListener = {
    CallExpression(node) {
      const name = dottedName(node.callee);
      if (name === undefined) return;
      const label = handlerCallLabel(name, options.requestHandlerCalls);
      if (label !== undefined) {
        for (const arg of node.arguments) add(resolveFunction(context, arg, node), label);
      }
      if (lastSegment(name) === 'defineTool') {
        for (const arg of node.arguments) add(executeOf(arg), 'a tool execute (defineTool)');
      }
    },
    ClassDeclaration: (node) => void classes.push(node),
    ClassExpression: (node) => void classes.push(node),
    FunctionDeclaration: (node) => addIfNamed(node.id?.name, node),
    VariableDeclarator: (node) => addIfNamed(node.id.type === 'Identifier' ? node.id.name : undefined, node.init),
    MethodDefinition: (node) => addIfNamed(keyName(node.key, node.computed), node.value),
    Property: (node) => addIfNamed(keyName(node.key, node.computed), node.value),
    PropertyDefinition: (node) => addIfNamed(keyName(node.key, node.computed), node.value),
  };

  return {
    listeners,
    scopes() {
      const toolClasses = new ToolClassResolver(context);
      for (const cls of classes) {
        if (toolClasses.isToolClass(cls)) add(runMethodOf(cls), `the tool method ${cls.id?.name ?? 'Tool'}.run`);
      }
      return found;
    },
  };
}

/** How a report names the handler of a call to `name`, or undefined when its arguments are no request scopes. */
function handlerCallLabel(name: string, configured: readonly string[]): string | undefined {
  const builtin = ISOTRACE_HANDLER_CALLS.get(lastSegment(name));
  if (builtin !== undefined) return builtin;
  return configured.some((pattern) => matchesCallee(name, pattern)) ? `a request handler (${name})` : undefined;
}

/** `app.get` matches `app.get`; `*` stands for one segment: `*.post` matches `router.post` and `app.post`. */
function matchesCallee(name: string, pattern: string): boolean {
  const segments = name.split('.');
  const wanted = pattern.split('.');
  return segments.length === wanted.length && wanted.every((segment, i) => segment === '*' || segment === segments[i]);
}

/** A function argument: written inline, or the name of a function declared in this file. */
function resolveFunction(context: Rule.RuleContext, arg: ESTree.Node, call: ESTree.Node): FunctionNode | undefined {
  const node = unwrap(arg);
  if (isFunction(node)) return node;
  if (node.type !== 'Identifier') return undefined;
  const definition = findVariable(context.sourceCode.getScope(call), node.name)?.defs[0]?.node as ESTree.Node | undefined;
  if (definition?.type === 'FunctionDeclaration') return definition;
  if (definition?.type === 'VariableDeclarator' && definition.init && isFunction(unwrap(definition.init))) return unwrap(definition.init) as FunctionNode;
  return undefined;
}

function findVariable(scope: Scope.Scope | null, name: string): Scope.Variable | undefined {
  for (let current = scope; current; current = current.upper) {
    const variable = current.set.get(name);
    if (variable) return variable;
  }
  return undefined;
}

/** The `execute` function of a `defineTool({ … })` definition object. */
function executeOf(arg: ESTree.Node): FunctionNode | undefined {
  const node = unwrap(arg);
  if (node.type !== 'ObjectExpression') return undefined;
  for (const property of node.properties) {
    if (property.type === 'Property' && keyName(property.key, property.computed) === 'execute' && isFunction(unwrap(property.value))) {
      return unwrap(property.value) as FunctionNode;
    }
  }
  return undefined;
}

/** The instance `run` method of a class body (`run() {}` or `run = async () => …`). */
function runMethodOf(cls: ESTree.ClassDeclaration | ESTree.ClassExpression): FunctionNode | undefined {
  for (const member of cls.body.body) {
    if (member.type !== 'MethodDefinition' && member.type !== 'PropertyDefinition') continue;
    if (member.static || keyName(member.key, member.computed) !== 'run' || !member.value) continue;
    const value = unwrap(member.value);
    if (isFunction(value)) return value;
  }
  return undefined;
}

/** Whether a class extends isotrace's `Tool`, directly or through classes of the same file. */
class ToolClassResolver {
  readonly #context: Rule.RuleContext;
  /** Answers so far; `false` while a class is being resolved, so a cycle (only in broken code) ends. */
  readonly #answers = new Map<ESTree.Node, boolean>();

  constructor(context: Rule.RuleContext) {
    this.#context = context;
  }

  isToolClass(cls: ESTree.ClassDeclaration | ESTree.ClassExpression): boolean {
    const known = this.#answers.get(cls);
    if (known !== undefined) return known;
    this.#answers.set(cls, false);
    const answer = this.#extendsTool(cls);
    this.#answers.set(cls, answer);
    return answer;
  }

  #extendsTool(cls: ESTree.ClassDeclaration | ESTree.ClassExpression): boolean {
    const superClass = cls.superClass ? unwrap(cls.superClass) : undefined;
    if (!superClass) return false;
    const name = dottedName(superClass);
    if (name !== undefined && lastSegment(name) === 'Tool') return true;
    const base = superClass.type === 'Identifier' ? this.#classNamed(superClass.name, cls) : undefined;
    return base !== undefined && this.isToolClass(base);
  }

  #classNamed(name: string, from: ESTree.Node): ESTree.ClassDeclaration | ESTree.ClassExpression | undefined {
    const definition = findVariable(this.#context.sourceCode.getScope(from), name)?.defs[0]?.node as ESTree.Node | undefined;
    if (definition?.type === 'ClassDeclaration') return definition;
    if (definition?.type === 'VariableDeclarator' && definition.init && unwrap(definition.init).type === 'ClassExpression') {
      return unwrap(definition.init) as ESTree.ClassExpression;
    }
    return undefined;
  }
}
