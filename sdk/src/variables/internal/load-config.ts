import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { ConfigError } from '../../errors/errors.js';
import { expandVariables } from './expand-variables.js';

// One line ending in .yaml/.yml/.json that is not itself YAML (no `key: value`, no flow collection).
const CONFIG_PATH = /^(?!.*: )[^\n{[]*\.(ya?ml|json)$/i;

/**
 * Loads YAML (or JSON) config from a file path (a single line ending in
 * .yaml, .yml or .json, without `: `) or from the text itself, then expands variables in
 * every string value with expandVariables(). Expansion runs after parsing, so
 * a variable's value is always data: it can never add keys or change the
 * document's structure.
 *
 * Rejects with ConfigError when the file cannot be read or the YAML does not
 * parse, and with UnresolvedVariableError for a variable with no value.
 */
export async function loadConfig<T = unknown>(pathOrText: string): Promise<T> {
  if (typeof pathOrText !== 'string') throw new TypeError('loadConfig(pathOrText): expected a file path or YAML text.');
  const isPath = CONFIG_PATH.test(pathOrText.trim());
  const text = isPath ? await readConfigFile(pathOrText.trim()) : pathOrText;
  let parsed: unknown;
  try {
    parsed = parse(text, { schema: 'core', merge: false, maxAliasCount: 100 });
  } catch (error) {
    throw new ConfigError(`Config ${isPath ? `file '${pathOrText.trim()}'` : 'text'} is not valid YAML: ${(error as Error).message}`, { cause: error });
  }
  return expandVariables(parsed) as T;
}

async function readConfigFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`Cannot read config file '${path}': ${(error as Error).message}`, { cause: error });
  }
}
