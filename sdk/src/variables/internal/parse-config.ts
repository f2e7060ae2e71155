import type * as Yaml from 'yaml';
import { ConfigError } from '../../errors/errors.js';
import { loadModule } from '../../tracing/internal/load-module.js';
import type { ConfigOptions } from '../types.js';
import { envReader, expandWith } from './expand-variables.js';

/** The largest config text parsed, in characters; configs are small, and a parser's time must be bounded. */
export const MAX_CONFIG_CHARS = 4 * 1024 * 1024;
// Aliases a document may expand (the `yaml` package's guard against alias bombs).
const MAX_ALIAS_COUNT = 100;

/**
 * Parses YAML (or JSON) config text, then expands variables in every string
 * value as expandVariables() does, reading the environment as `env` allows
 * (default `true`; `false` for text that holds user or tenant input).
 * Expansion runs after parsing, so a variable's value is always data: it can
 * never add keys or change the document's structure. The text is only ever
 * parsed, never taken for a file path (loadConfig() reads files).
 *
 * Throws ConfigError when the text does not parse, has a duplicate key, is
 * larger than 4 MiB, nested deeper than 1000 levels (or than the parser's stack allows), refers to itself
 * through an alias or expands too many aliases; UnresolvedVariableError for
 * a variable with no value; TypeError for text that is not a string or a bad option.
 *
 * ```ts
 * const config = parseConfig<AgentConfig>('memory: memory/${TENANT_ID}\n', { env: false });
 * ```
 */
export function parseConfig<T = unknown>(text: string, options: ConfigOptions = {}): T {
  if (typeof text !== 'string') throw new TypeError('parseConfig(text): expected YAML or JSON text (use loadConfig(path) to read a file).');
  return parseConfigFrom<T>(text, options, 'Config text', 'parseConfig');
}

/** parseConfig() naming its source (`Config file '…'`) in errors. */
export function parseConfigFrom<T>(text: string, options: ConfigOptions, source: string, caller: string): T {
  envReader(options, caller);
  if (text.length > MAX_CONFIG_CHARS) throw new ConfigError(`${source} is larger than ${MAX_CONFIG_CHARS} characters.`);
  const parsed = parseYaml(text, source);
  return expandWith<T>(parsed as T, options, caller, (message) => new ConfigError(`${source} cannot be used: ${message}`));
}

function parseYaml(text: string, source: string): unknown {
  try {
    // uniqueKeys: false, checked below in one pass: the parser's own check takes quadratic time in the keys of a map.
    // Loaded when a config is first parsed: `import 'isotrace'` does not pay for the parser.
    const doc = loadModule<typeof Yaml>('yaml').parseDocument(text, { schema: 'core', merge: false, uniqueKeys: false });
    const [error] = doc.errors;
    if (error) throw error;
    rejectDuplicateKeys(doc.contents);
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    // Also a RangeError from a nesting deeper than the parser's stack: bad input, never a crash.
    throw new ConfigError(`${source} is not valid YAML: ${(error as Error).message}`, { cause: error });
  }
}

function rejectDuplicateKeys(contents: Parameters<typeof Yaml.visit>[0]): void {
  const { isMap, isScalar, visit } = loadModule<typeof Yaml>('yaml');
  visit(contents, {
    Map(_key, map) {
      if (!isMap(map)) return;
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const name = String(pair.key.value);
        if (seen.has(name)) throw new Error(`duplicate key '${name}'`);
        seen.add(name);
      }
    },
  });
}
