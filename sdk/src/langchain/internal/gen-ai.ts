/** GenAI semantic-convention names the LangChain adapter sets (the tool span's own come from the dispatcher). */
export const GEN_AI = {
  operationName: 'gen_ai.operation.name',
  providerName: 'gen_ai.provider.name',
  agentName: 'gen_ai.agent.name',
  conversationId: 'gen_ai.conversation.id',
} as const;

/** `gen_ai.operation.name` of an agent run. */
export const INVOKE_AGENT = 'invoke_agent';
