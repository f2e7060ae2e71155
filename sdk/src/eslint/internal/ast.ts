import type { Rule, SourceCode } from 'eslint';
import type * as ESTree from 'estree';

/** An AST node with its parent link and range (ESLint sets both on every node). */
export type Node = Rule.Node;

/** A function node: a request scope is always one of these. */
export type FunctionNode = ESTree.FunctionDeclaration | ESTree.FunctionExpression | ESTree.ArrowFunctionExpression;

/** TypeScript-only wrappers (`x!`, `x as T`, `x satisfies T`, `<T>x`) and `a?.b` chains: transparent for data flow. */
const TRANSPARENT = new Set(['TSNonNullExpression', 'TSAsExpression', 'TSSatisfiesExpression', 'TSTypeAssertion', 'ChainExpression']);

/** The node's type as a plain string: typescript-eslint adds node types ESTree's union does not list. */
export function typeOf(node: { type: string }): string {
  return node.type;
}

export function isFunction(node: { type: string } | null | undefined): node is FunctionNode {
  const type = node?.type;
  return type === 'FunctionDeclaration' || type === 'FunctionExpression' || type === 'ArrowFunctionExpression';
}

/** `expr` without TypeScript wrappers and chain expressions around it. */
export function unwrap(expr: ESTree.Node): ESTree.Node {
  let node = expr as ESTree.Node & { expression?: ESTree.Node };
  while (TRANSPARENT.has(typeOf(node)) && node.expression) node = node.expression as typeof node;
  return node;
}

/** The parent of `node`, skipping the TypeScript wrappers and chain expressions that enclose it. */
export function parentOf(node: Node): Node | null {
  let parent = node.parent;
  while (parent && TRANSPARENT.has(typeOf(parent))) parent = parent.parent;
  return parent;
}

/** The innermost function containing `node` (not `node` itself), or null at module level. */
export function enclosingFunction(node: Node): Node | null {
  for (let current = node.parent; current; current = current.parent) if (isFunction(current)) return current;
  return null;
}

export function rangeOf(node: ESTree.Node): [number, number] {
  return (node as Node).range as [number, number];
}

/** Whether `inner` lies inside `outer` (or is it). */
export function contains(outer: ESTree.Node, inner: ESTree.Node): boolean {
  const [start, end] = rangeOf(outer);
  const [innerStart, innerEnd] = rangeOf(inner);
  return start <= innerStart && innerEnd <= end;
}

/**
 * The dotted name of a callee: `withRequestContext`, `app.get`, `this.router.post`;
 * undefined for computed or call-result callees (`handlers[i](…)`, `make()(…)`).
 */
export function dottedName(expr: ESTree.Node): string | undefined {
  const node = unwrap(expr);
  if (node.type === 'Identifier') return node.name;
  if (node.type === 'ThisExpression') return 'this';
  if (node.type !== 'MemberExpression' || node.computed || node.property.type !== 'Identifier') return undefined;
  const object = dottedName(node.object);
  return object === undefined ? undefined : `${object}.${node.property.name}`;
}

/** The last segment of a dotted callee name: `withRequestContext` for `isotrace.withRequestContext`. */
export function lastSegment(name: string): string {
  return name.slice(name.lastIndexOf('.') + 1);
}

/** A property or member key as written: `run` for `run() {}`, `'execute'`, `x.execute`; undefined when computed. */
export function keyName(key: ESTree.Node, computed: boolean): string | undefined {
  if (!computed && key.type === 'Identifier') return key.name;
  if (key.type === 'Literal' && typeof key.value === 'string') return key.value;
  return undefined;
}

/** Calls `visit` on `root` and every node below it (in source order); `visit` returning true stops the walk. */
export function someNode(root: ESTree.Node, keys: SourceCode.VisitorKeys, visit: (node: ESTree.Node) => boolean): boolean {
  if (visit(root)) return true;
  for (const key of keys[root.type] ?? []) {
    const child = (root as unknown as Record<string, unknown>)[key];
    const children = Array.isArray(child) ? child : [child];
    for (const node of children) {
      if (isNode(node) && someNode(node, keys, visit)) return true;
    }
  }
  return false;
}

function isNode(value: unknown): value is ESTree.Node {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}
