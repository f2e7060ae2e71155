import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../errors/errors.js';
import type { ConfigOptions } from '../types.js';
import { envReader } from './expand-variables.js';
import { parseConfigFrom } from './parse-config.js';

/**
 * Reads a YAML (or JSON) config file, given as a path or a `file:` URL, and
 * parses it as parseConfig() does: variables are expanded after parsing, from
 * the request context and then the environment as `env` allows (default
 * `true`). The argument is always a file: to parse text, call parseConfig().
 *
 * Rejects with ConfigError naming the file when it cannot be read (missing,
 * unreadable) or its content does not parse (see parseConfig()); with
 * UnresolvedVariableError for a variable with no value; with TypeError for
 * an argument that is not a path or a file: URL, or a bad option.
 *
 * ```ts
 * const config = await loadConfig<AgentConfig>(new URL('./agent.yaml', import.meta.url));
 * ```
 */
export async function loadConfig<T = unknown>(path: string | URL, options: ConfigOptions = {}): Promise<T> {
  const file = filePath(path);
  envReader(options, 'loadConfig');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`Cannot read config file '${file}': ${(error as Error).message}. (loadConfig() reads a file; to parse YAML text, call parseConfig(text).)`, { cause: error });
  }
  return parseConfigFrom<T>(text, options, `Config file '${file}'`, 'loadConfig');
}

function filePath(path: string | URL): string {
  if (typeof path === 'string' && path !== '') return path;
  if (path instanceof URL && path.protocol === 'file:') return fileURLToPath(path);
  throw new TypeError('loadConfig(path): expected a file path or a file: URL (to parse YAML text, call parseConfig(text)).');
}
