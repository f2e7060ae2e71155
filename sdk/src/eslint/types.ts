import type { ESLint, Linter, Rule } from 'eslint';

/** Options of the `isotrace/no-request-state-in-module-scope` rule (all optional). */
export interface NoRequestStateInModuleScopeOptions {
  /**
   * More calls whose function arguments are request handlers, besides
   * isotrace's own (withRequestContext, httpRequestContext,
   * handleWebSocketMessages, runRequest, defineWorkerTask, bindToRequest):
   * dotted callee names, `*` standing for one segment. Example for Express and
   * Fastify routes: `['app.get', 'app.post', 'router.*', 'fastify.route']`.
   */
  requestHandlerCalls?: string[];
  /**
   * Names of functions and methods that are request handlers themselves
   * (a declaration, `const name = (…) => …`, or a method of that name).
   * Example: `['handleRequest']`.
   */
  requestFunctions?: string[];
}

/** The `isotrace/eslint` plugin: its rule and a flat-config preset. */
export interface IsotraceEslintPlugin extends ESLint.Plugin {
  readonly meta: { name: string; version?: string };
  readonly rules: { 'no-request-state-in-module-scope': Rule.RuleModule };
  readonly configs: {
    /** Turns on `isotrace/no-request-state-in-module-scope` as an error. */
    readonly recommended: Linter.Config;
  };
}
