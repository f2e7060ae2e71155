import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { IsotraceError } from '../../errors/errors.js';

const require = createRequire(import.meta.url);
/** Resolved files by specifier: resolving costs more than the loaded module's require() cache hit. */
const resolved = new Map<string, string>();

/**
 * Loads a package synchronously when a caller first needs it, so that
 * `import 'isotrace'`, `isotrace/otel`, worker threads and child processes do
 * not pay for what only startTracing(), a RedisStore, … uses. It loads the
 * package's ES module build (require() of an ES module), the very instance an
 * `import` of it gives: one copy of OpenTelemetry's classes and globals,
 * whoever loads the package first. Synchronous, so startTracing() stays so.
 */
export function loadModule<T>(specifier: string): T {
  return require(esmPath(specifier)) as T;
}

/**
 * loadModule() for an optional peer dependency: when the package is not
 * installed, throws an IsotraceError that names it and how to install it,
 * instead of Node's bare "Cannot find package".
 */
export function loadPeer<T>(specifier: string, neededBy: string): T {
  let path: string;
  try {
    path = esmPath(specifier);
  } catch (error) {
    throw new IsotraceError(`${neededBy} needs the package '${specifier}', an optional peer dependency of isotrace that is not installed: run \`npm install ${specifier}\`.`, { cause: error });
  }
  return require(path) as T;
}

/**
 * The file an `import` of `specifier` loads. Where a bundler left no
 * import.meta.resolve, the file require() resolves it to (the package's
 * CommonJS build, where it has one).
 */
function esmPath(specifier: string): string {
  let path = resolved.get(specifier);
  if (path === undefined) {
    path = typeof import.meta.resolve === 'function' ? fileURLToPath(import.meta.resolve(specifier)) : require.resolve(specifier);
    resolved.set(specifier, path);
  }
  return path;
}
