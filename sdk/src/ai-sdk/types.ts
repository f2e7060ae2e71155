import type { ToolSystemOptions } from '../tools/types.js';

/**
 * Options of isotraceTools(): per-tool-set overrides of startTracing()'s
 * `recordToolArguments` and `redact` for the `execute_tool` spans isotrace
 * writes. What the AI SDK's own telemetry records (its
 * `gen_ai.tool.call.arguments` / `.result`) follows its `telemetry`
 * options (`recordInputs`, `recordOutputs`), not these.
 */
export type IsotraceToolsOptions = ToolSystemOptions;
