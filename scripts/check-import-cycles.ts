/**
 * Fails when sdk/src has a runtime import cycle: modules that load each other
 * (type-only imports are erased and do not count). Cycles make load order
 * decide what is initialised, the knot a concept-per-folder layout avoids.
 * Run by `npm run lint`; prints each cycle as a path. Another folder can be
 * given as the first argument.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(process.argv[2] ?? fileURLToPath(new URL('../sdk/src', import.meta.url)));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

// `import x from`, `import { a } from`, `export { a } from`, `export * from`, bare `import './x.js'`; not `import type` / `export type`.
const RUNTIME_IMPORT = /^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?['"](\.[^'"]+)['"]/gm;

function runtimeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(RUNTIME_IMPORT)].map((match) => resolve(dirname(file), match[1]!.replace(/\.js$/, '.ts')));
}

/** Every elementary cycle found by a depth-first walk, each reported once (by its smallest member). */
function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles = new Map<string, string[]>();
  const state = new Map<string, 'active' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'active');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'active') {
        const cycle = stack.slice(stack.indexOf(next));
        const key = [...cycle].sort().join('|');
        if (!cycles.has(key)) cycles.set(key, [...cycle, next]);
      } else if (!state.has(next)) {
        visit(next);
      }
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return [...cycles.values()];
}

const graph = new Map(sourceFiles(root).map((file) => [file, runtimeImports(file)]));
const cycles = findCycles(graph);
for (const cycle of cycles) console.error(`import cycle: ${cycle.map((file) => relative(root, file)).join(' -> ')}`);
if (cycles.length > 0) {
  console.error(`${cycles.length} runtime import cycle(s) in ${root}: move the shared piece into its own module, or import types only.`);
  process.exit(1);
}
console.log(`no runtime import cycles in ${root} (${graph.size} modules)`);
