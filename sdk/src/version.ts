import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * isotrace's own version, from its package.json: the instrumentation scope
 * version of every span isotrace makes. Found by walking up from this module,
 * since the built `dist/` and the `sdk/src/` sources sit at different depths.
 * `undefined` (never a made-up version) when no isotrace package.json is found.
 */
export const ISOTRACE_VERSION: string | undefined = findOwnVersion();

/** The tracer's instrumentation scope name. */
export const ISOTRACE_SCOPE = 'isotrace';

function findOwnVersion(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const version = versionIn(join(dir, 'package.json'));
    if (version !== undefined) return version;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The version in `file` when it is isotrace's package.json; undefined for any other or a missing one. */
function versionIn(file: string): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
    return pkg.name === 'isotrace' && typeof pkg.version === 'string' ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}
