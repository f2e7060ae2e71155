/**
 * `isotrace/eslint`: an ESLint plugin (flat config) that finds request data
 * kept in module-level state — the "module-level current user" bug that no
 * run-time check can see. See docs/eslint.md.
 *
 * ```js
 * // eslint.config.js
 * import isotrace from 'isotrace/eslint';
 * export default [isotrace.configs.recommended];
 * ```
 */
import { ISOTRACE_VERSION } from '../version.js';
import { noRequestStateInModuleScope } from './internal/rule.js';
import type { Linter } from 'eslint';
import type { IsotraceEslintPlugin } from './types.js';

const rules = { 'no-request-state-in-module-scope': noRequestStateInModuleScope };

const recommended: Linter.Config = {
  name: 'isotrace/recommended',
  rules: { 'isotrace/no-request-state-in-module-scope': 'error' },
};

/**
 * The plugin: `rules['no-request-state-in-module-scope']` and
 * `configs.recommended`, which registers the plugin as `isotrace` and turns
 * the rule on as an error. With options:
 *
 * ```js
 * { plugins: { isotrace }, rules: { 'isotrace/no-request-state-in-module-scope': ['error', { requestHandlerCalls: ['app.get'] }] } }
 * ```
 */
const isotrace: IsotraceEslintPlugin = {
  meta: ISOTRACE_VERSION === undefined ? { name: 'isotrace' } : { name: 'isotrace', version: ISOTRACE_VERSION },
  rules,
  configs: { recommended },
};
recommended.plugins = { isotrace }; // the preset registers the plugin it belongs to

export default isotrace;
export type { IsotraceEslintPlugin, NoRequestStateInModuleScopeOptions } from './types.js';
