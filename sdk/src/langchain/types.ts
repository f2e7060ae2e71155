import type { ToolSystemOptions } from '../tools/types.js';

/**
 * Options of isotraceTools(): per-tool-set overrides of startTracing()'s
 * `recordToolArguments` and `redact` for the tools' `execute_tool` spans.
 */
export type IsotraceToolsOptions = ToolSystemOptions;

/** Options of traceAgent(). */
export interface TraceAgentOptions {
  /**
   * `gen_ai.agent.name` and the span name `invoke_agent {name}`. Default: the
   * agent's own name (`createAgent({ name })`); without one the span is
   * `invoke_agent` and carries no agent name.
   */
  name?: string;
  /**
   * `gen_ai.provider.name`. Default: the provider prefix of a model given as
   * a string (`'openai:gpt-4o'` → `openai`), else the chat model's own type
   * (`_llmType()`, e.g. `openai`, `anthropic`), else `langchain`.
   */
  providerName?: string;
}

/**
 * What traceAgent() wraps: anything with LangChain's `invoke(input, config)`
 * (a `createAgent()` agent, a compiled LangGraph graph, any Runnable), and
 * `stream(input, config)` when it has one.
 */
export interface InvocableAgent {
  invoke(...args: never[]): Promise<unknown>;
}
