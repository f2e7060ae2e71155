/**
 * Lets Node processes started by the tests run isotrace from `sdk/src/` (no
 * build): loaded with `--import` next to `--conditions=isotrace-source` (see
 * test/helpers/source-mode.ts). The condition maps `isotrace/<entry>` to
 * `sdk/src/<entry>/index.ts`; the sources import each other as `./x.js` (what
 * tsc emits), which only exists after a build, so this resolve hook maps such
 * an import from a file under sdk/src/ to the `./x.ts` next to it. Nothing else
 * is touched. Plain JavaScript, so it also loads where type stripping is off.
 */
import { existsSync } from 'node:fs';
import module from 'node:module';
import { fileURLToPath } from 'node:url';

const SOURCE_ROOT = new URL('../../sdk/src/', import.meta.url).href;

/** The `.ts` source a relative `.js` import from sdk/src/ means, or undefined for any other import. */
function sourceFor(specifier, parentURL) {
  if (!parentURL?.startsWith(SOURCE_ROOT) || !/^\.\.?\//.test(specifier) || !specifier.endsWith('.js')) return undefined;
  const built = new URL(specifier, parentURL);
  if (!built.href.startsWith(SOURCE_ROOT) || existsSync(fileURLToPath(built))) return undefined;
  const source = new URL(built.href.replace(/\.js$/, '.ts'));
  return existsSync(fileURLToPath(source)) ? source.href : undefined;
}

// Node before 22.15 has no synchronous hooks: such a process (a tool the tests
// run, not isotrace) loads as usual, and an sdk/src import there fails loudly.
if (typeof module.registerHooks === 'function') {
  module.registerHooks({
    resolve(specifier, context, nextResolve) {
      const source = sourceFor(specifier, context.parentURL);
      return source === undefined ? nextResolve(specifier, context) : { url: source, shortCircuit: true };
    },
  });
}
