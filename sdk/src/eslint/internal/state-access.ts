import type { Scope, SourceCode } from 'eslint';
import type * as ESTree from 'estree';
import { keyName, parentOf, unwrap, type Node } from './ast.js';

/** Shared state: a binding, or one property of it (`Notes.shared`, `state.current`); `property` undefined means the whole binding. */
export interface StateTarget {
  readonly variable: Scope.Variable;
  readonly property?: string;
}

/**
 * How a write changes the state: `assign` (`=`, `&&=`), `lazy` (`??=`, `||=`,
 * `if (!x) x = …`, `x = x ?? …`), `store` (Map/Set/array insertions,
 * Object.assign), `combine` (`+=`, `++`), `remove` (`delete`, `.delete()`,
 * `.clear()`) or `mutate` (`.shift()`, `.splice()`, `.sort()` …).
 */
export type WriteForm = 'assign' | 'lazy' | 'store' | 'combine' | 'remove' | 'mutate';

export interface StateWrite {
  readonly kind: 'write';
  readonly target: StateTarget;
  /** The assignment, update or call: what the report points at. */
  readonly node: ESTree.Node;
  readonly form: WriteForm;
  /** The values written (for `assign`, `lazy`, `store`). */
  readonly values: readonly ESTree.Node[];
  /** The computed keys the write goes through (`cache[key]`, `map.set(key, …)`). */
  readonly keys: readonly ESTree.Node[];
}

export interface StateRead {
  readonly kind: 'read';
  readonly target: StateTarget;
  readonly node: ESTree.Node;
}

export type StateAccess = StateRead | StateWrite;

/** Methods that insert what they are given. */
const STORING_METHODS = new Set(['set', 'add', 'push', 'unshift']);
/** Methods that change a collection and hand back what they took out or reordered (so they read it, too). */
const MUTATING_METHODS = new Set(['pop', 'shift', 'splice', 'sort', 'reverse', 'fill', 'copyWithin']);
const REMOVING_METHODS = new Set(['delete', 'clear']);

interface Member {
  readonly name?: string;
  readonly key?: ESTree.Node;
}

/** What one reference to a shared binding does: reads it, writes it, or both (`queue.shift()`). */
export function classifyReference(reference: Scope.Reference, sourceCode: SourceCode): StateAccess[] {
  if (reference.init) return [];
  const identifier = reference.identifier as unknown as Node;
  const variable = reference.resolved as Scope.Variable;
  if (reference.isWrite()) return [bindingWrite(identifier, variable, sourceCode)];

  const { top, members } = memberChain(identifier);
  const write = memberWrite(top, members, variable, sourceCode);
  if (!write) return [{ kind: 'read', target: { variable, property: members[0]?.name }, node: identifier }];
  return write.form === 'mutate' ? [write, { kind: 'read', target: write.target, node: identifier }] : [write];
}

/** A write to the binding itself: `current = …`, `client ??= …`, `count++`, `for (current of …)`. */
function bindingWrite(identifier: Node, variable: Scope.Variable, sourceCode: SourceCode): StateWrite {
  const target = { variable };
  const parent = parentOf(identifier);
  if (parent?.type === 'AssignmentExpression' && unwrap(parent.left) === identifier) return assignment(parent, target, [], sourceCode);
  if (parent?.type === 'UpdateExpression') return { kind: 'write', target, node: parent, form: 'combine', values: [], keys: [] };
  return { kind: 'write', target, node: parent ?? identifier, form: 'assign', values: [], keys: [] };
}

/** `a.b[c].d` from `a`: the outermost member expression and the members on the way, in order. */
function memberChain(identifier: Node): { top: Node; members: Member[] } {
  const members: Member[] = [];
  let top = identifier;
  for (let parent = parentOf(top); parent?.type === 'MemberExpression' && unwrap(parent.object) === top; parent = parentOf(top)) {
    const name = keyName(parent.property, parent.computed);
    members.push(name === undefined ? { key: parent.property } : { name });
    top = parent;
  }
  return { top, members };
}

/** A write through a member chain rooted at a shared binding, or undefined when the chain is only read. */
function memberWrite(top: Node, members: Member[], variable: Scope.Variable, sourceCode: SourceCode): StateWrite | undefined {
  const parent = parentOf(top);
  if (!parent) return undefined;
  const keys = members.flatMap((member) => (member.key ? [member.key] : []));
  if (members.length > 0) {
    const target = { variable, property: members[0]?.name };
    if (parent.type === 'AssignmentExpression' && unwrap(parent.left) === top) return assignment(parent, target, keys, sourceCode);
    if (parent.type === 'UpdateExpression') return { kind: 'write', target, node: parent, form: 'combine', values: [], keys };
    if (parent.type === 'UnaryExpression' && parent.operator === 'delete') return { kind: 'write', target, node: parent, form: 'remove', values: [], keys };
    if (parent.type === 'CallExpression' && unwrap(parent.callee) === top) return methodWrite(parent, members, variable);
  }
  if (parent.type === 'CallExpression' && parent.arguments[0] && unwrap(parent.arguments[0]) === top && isObjectAssign(parent.callee)) {
    return { kind: 'write', target: { variable, property: members[0]?.name }, node: parent, form: 'store', values: parent.arguments.slice(1), keys };
  }
  return undefined;
}

/** `state.map.set(k, v)`, `queue.push(x)`, `cache.delete(k)`: a write to the chain before the method name. */
function methodWrite(call: ESTree.CallExpression, members: Member[], variable: Scope.Variable): StateWrite | undefined {
  const method = members.at(-1)?.name;
  if (method === undefined) return undefined;
  const owner = members.slice(0, -1);
  const target = { variable, property: owner[0]?.name };
  const keys = owner.flatMap((member) => (member.key ? [member.key] : []));
  const args = call.arguments as ESTree.Node[];
  if (STORING_METHODS.has(method)) {
    const keyed = method === 'set' || method === 'add';
    return { kind: 'write', target, node: call, form: 'store', values: method === 'set' ? args.slice(1) : args, keys: keyed && args[0] ? [...keys, args[0]] : keys };
  }
  if (REMOVING_METHODS.has(method)) return { kind: 'write', target, node: call, form: 'remove', values: [], keys: method === 'delete' && args[0] ? [...keys, args[0]] : keys };
  if (MUTATING_METHODS.has(method)) return { kind: 'write', target, node: call, form: 'mutate', values: args, keys };
  return undefined;
}

function isObjectAssign(callee: ESTree.Node): boolean {
  const node = unwrap(callee);
  return node.type === 'MemberExpression' && unwrap(node.object).type === 'Identifier' && (unwrap(node.object) as ESTree.Identifier).name === 'Object' && keyName(node.property, node.computed) === 'assign';
}

function assignment(node: ESTree.AssignmentExpression, target: StateTarget, keys: ESTree.Node[], sourceCode: SourceCode): StateWrite {
  const write = { kind: 'write', target, node, values: [node.right], keys } as const;
  if (node.operator === '??=' || node.operator === '||=') return { ...write, form: 'lazy' };
  if (node.operator === '&&=') return { ...write, form: 'assign' };
  if (node.operator !== '=') return { ...write, form: 'combine', values: [] };
  return { ...write, form: isLazyInitialisation(node, sourceCode) ? 'lazy' : 'assign' };
}

/** `x = x ?? make()`, `x = x || make()`, or `x = make()` as the body of `if (!x)` / `if (x == null)` / `if (x === undefined)`. */
function isLazyInitialisation(node: ESTree.AssignmentExpression, sourceCode: SourceCode): boolean {
  const target = sourceCode.getText(node.left);
  const right = unwrap(node.right);
  if (right.type === 'LogicalExpression' && right.operator !== '&&' && sourceCode.getText(unwrap(right.left)) === target) return true;
  const guard = guardingIf(node as Node);
  return guard !== undefined && testsMissing(unwrap(guard.test), target, sourceCode);
}

/** The `if` whose consequent is this assignment alone (as a statement, or a block of it). */
function guardingIf(node: Node): ESTree.IfStatement | undefined {
  let statement = node.parent;
  if (statement?.type !== 'ExpressionStatement') return undefined;
  let parent = statement.parent;
  if (parent?.type === 'BlockStatement' && parent.body.length === 1) {
    statement = parent;
    parent = parent.parent;
  }
  return parent?.type === 'IfStatement' && parent.consequent === statement ? parent : undefined;
}

function testsMissing(test: ESTree.Node, target: string, sourceCode: SourceCode): boolean {
  const isTarget = (expr: ESTree.Node): boolean => sourceCode.getText(unwrap(expr)) === target;
  if (test.type === 'UnaryExpression' && test.operator === '!') return isTarget(test.argument);
  if (test.type !== 'BinaryExpression' || !['==', '==='].includes(test.operator)) return false;
  const { left, right } = test as ESTree.BinaryExpression & { left: ESTree.Node };
  const isNothing = (expr: ESTree.Node): boolean => {
    const node = unwrap(expr);
    return (node.type === 'Literal' && node.value === null) || (node.type === 'Identifier' && node.name === 'undefined') || (node.type === 'Literal' && node.value === 'undefined');
  };
  const typeofTarget = (expr: ESTree.Node): boolean => expr.type === 'UnaryExpression' && expr.operator === 'typeof' && isTarget(expr.argument);
  return (isTarget(left) || typeofTarget(left)) ? isNothing(right) : (isTarget(right) || typeofTarget(right)) && isNothing(left);
}
