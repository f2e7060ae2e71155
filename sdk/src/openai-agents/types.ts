import type { ToolSystemOptions } from '../tools/types.js';

/**
 * Options of isotraceTools(): per-tool-set overrides of startTracing()'s
 * `recordToolArguments` and `redact` for the tools' `execute_tool` spans.
 */
export type IsotraceToolsOptions = ToolSystemOptions;

/** Options of isotraceRunner() (isotrace's own; the Runner's config is the first argument). */
export interface IsotraceRunnerOptions {
  /**
   * `gen_ai.provider.name` of the agents' `invoke_agent` spans. Default
   * `openai`; give the provider you actually call when the agents use
   * another model provider (`anthropic`, `aws.bedrock`, …).
   */
  providerName?: string;
}
