/**
 * OpenTelemetry GenAI semantic-convention names isotrace sets on tool and
 * agent spans (semantic-conventions-genai, `gen-ai-spans.md` and
 * `gen-ai-agent-spans.md`): one list for the dispatcher, the agent-span
 * helper and every framework adapter.
 */
export const GEN_AI = {
  operationName: 'gen_ai.operation.name',
  providerName: 'gen_ai.provider.name',
  agentName: 'gen_ai.agent.name',
  agentId: 'gen_ai.agent.id',
  agentDescription: 'gen_ai.agent.description',
  conversationId: 'gen_ai.conversation.id',
  requestModel: 'gen_ai.request.model',
  toolName: 'gen_ai.tool.name',
  toolCallId: 'gen_ai.tool.call.id',
  toolType: 'gen_ai.tool.type',
  toolDescription: 'gen_ai.tool.description',
  toolCallArguments: 'gen_ai.tool.call.arguments',
  toolCallResult: 'gen_ai.tool.call.result',
} as const;

/** `gen_ai.operation.name` of an agent run (span name `invoke_agent {agent name}`). */
export const INVOKE_AGENT = 'invoke_agent';

/** `gen_ai.operation.name` of a tool call (span name `execute_tool {tool name}`). */
export const EXECUTE_TOOL = 'execute_tool';
