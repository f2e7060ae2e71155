/**
 * The tests run isotrace from `sdk/src/`, not from the built `dist/`, so an
 * edit is tested without a build. Each `exports` entry of package.json has an
 * `isotrace-source` condition pointing at its `sdk/src/<entry>/index.ts`
 * (consumers never set it and get `dist/`). vitest resolves with it
 * (sourceModeConfig() in vitest.config.ts); every Node process the tests start gets it through
 * NODE_OPTIONS, with test/helpers/source-hooks.mjs for the sources' `./x.js` imports.
 */

/** The package.json export condition that points an entry at its TypeScript source. */
export const SOURCE_CONDITION = 'isotrace-source';

const HOOKS_URL = new URL('./source-hooks.mjs', import.meta.url).href;

/** The NODE_OPTIONS flags of source mode (a file URL: percent-encoded, so no spaces to quote). */
export const SOURCE_NODE_OPTIONS = `--conditions=${SOURCE_CONDITION} --import=${HOOKS_URL}`;

/** `nodeOptions` with the source-mode flags appended, once. */
export function withSourceNodeOptions(nodeOptions: string | undefined): string {
  const current = withoutSourceNodeOptions(nodeOptions);
  return current === '' ? SOURCE_NODE_OPTIONS : `${current} ${SOURCE_NODE_OPTIONS}`;
}

/** `nodeOptions` without the source-mode flags: for a process that must load isotrace as a consumer does. */
export function withoutSourceNodeOptions(nodeOptions: string | undefined): string {
  return (nodeOptions ?? '').replace(SOURCE_NODE_OPTIONS, '').trim();
}

/**
 * Source mode for a vitest config: sets NODE_OPTIONS for this process, so
 * vitest's workers and every process or thread they start inherit it, and
 * returns the Vite options that make vitest itself resolve with the condition
 * (vitest also passes these conditions to its workers as `--conditions`).
 */
export function sourceModeConfig(): { ssr: { resolve: { conditions: string[] } } } {
  process.env.NODE_OPTIONS = withSourceNodeOptions(process.env.NODE_OPTIONS);
  // After the source condition, vitest's own defaults (Vite's server conditions without 'module').
  return { ssr: { resolve: { conditions: [SOURCE_CONDITION, 'node', 'development|production'] } } };
}

/** A copy of `env` for a process that must load the installed, built package (not this repository's sources). */
export function consumerEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const { NODE_OPTIONS, ...rest } = env;
  const options = withoutSourceNodeOptions(NODE_OPTIONS);
  return options === '' ? rest : { ...rest, NODE_OPTIONS: options };
}
