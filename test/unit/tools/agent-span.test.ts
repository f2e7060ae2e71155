/**
 * invokeAgent(): the `invoke_agent {name}` span of a hand-written agent loop
 * (GenAI conventions, INTERNAL); tool spans started under it in the same
 * request carry `gen_ai.agent.name` / `gen_ai.agent.id`; and
 * `gen_ai.conversation.id` comes only from the app (the option, else the
 * request's `conversationId` init field), never made up.
 */
import { describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { withRequestContext } from 'isotrace';
import { useTestTracing } from 'isotrace/testing';
import { createToolSystem, defineTool, invokeAgent, RequestContextMissingError } from 'isotrace/tools';
import { onlySpan, parentIdOf, requestSpanOf, toolSpans } from './tool-test-helpers.ts';

const kit = useTestTracing();

const lookup = defineTool({ name: 'lookup', description: 'Looks things up', execute: async ({ q }: { q: string }) => `found ${q}` });

describe('invokeAgent', () => {
  it('runs the loop in an invoke_agent span of the request, parent of its tool spans, which name the agent', async () => {
    const { requestId, answer } = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async (ctx) => {
      const answer = await invokeAgent({ name: 'support', id: 'agent-7', description: 'Answers support questions', providerName: 'openai' }, async () => {
        const { dispatcher } = createToolSystem([lookup]);
        return Promise.all([dispatcher.execute('lookup', { q: 'a' }, { callId: 'c1' }), dispatcher.execute('lookup', { q: 'b' }, { callId: 'c2' })]);
      });
      return { requestId: ctx.requestId, answer };
    });
    expect(answer).toEqual(['found a', 'found b']);
    const agent = onlySpan(kit, 'invoke_agent support');
    expect(agent.kind).toBe(SpanKind.INTERNAL);
    expect(agent.attributes).toMatchObject({
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.agent.name': 'support',
      'gen_ai.agent.id': 'agent-7',
      'gen_ai.agent.description': 'Answers support questions',
      'gen_ai.provider.name': 'openai',
      'isotrace.request_id': requestId,
    });
    expect(agent.attributes['gen_ai.conversation.id']).toBeUndefined();
    expect(parentIdOf(agent)).toBe(requestSpanOf(kit, requestId).spanContext().spanId);
    const tools = toolSpans(kit);
    expect(tools).toHaveLength(2);
    for (const span of tools) {
      expect(parentIdOf(span)).toBe(agent.spanContext().spanId);
      expect(span.attributes).toMatchObject({ 'gen_ai.agent.name': 'support', 'gen_ai.agent.id': 'agent-7' });
      expect(span.attributes['gen_ai.conversation.id']).toBeUndefined();
    }
  });

  it('names no agent on tool spans outside an agent run', async () => {
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => createToolSystem([lookup]).dispatcher.execute('lookup', { q: 'a' }));
    const [span] = toolSpans(kit);
    expect(span?.attributes['gen_ai.agent.name']).toBeUndefined();
    expect(span?.attributes['gen_ai.agent.id']).toBeUndefined();
  });

  it('takes gen_ai.conversation.id from the request’s conversationId: request, agent and tool spans', async () => {
    const requestId = await withRequestContext({ tenantId: 'acme', userId: 'ada', conversationId: 'chat-42' }, async (ctx) => {
      await invokeAgent({ name: 'support' }, () => createToolSystem([lookup]).dispatcher.execute('lookup', { q: 'a' }));
      // A tool call outside any agent run still belongs to the conversation.
      await createToolSystem([lookup]).dispatcher.execute('lookup', { q: 'b' });
      return ctx.requestId;
    });
    expect(requestSpanOf(kit, requestId).attributes['gen_ai.conversation.id']).toBe('chat-42');
    expect(onlySpan(kit, 'invoke_agent support').attributes['gen_ai.conversation.id']).toBe('chat-42');
    expect(toolSpans(kit).map((span) => span.attributes['gen_ai.conversation.id'])).toEqual(['chat-42', 'chat-42']);
  });

  it('lets the option name the conversation for this run and its tool calls', async () => {
    await withRequestContext({ tenantId: 'acme', userId: 'ada', conversationId: 'chat-42' }, () =>
      invokeAgent({ name: 'support', conversationId: 'thread-7' }, () => createToolSystem([lookup]).dispatcher.execute('lookup', { q: 'a' })),
    );
    expect(onlySpan(kit, 'invoke_agent support').attributes['gen_ai.conversation.id']).toBe('thread-7');
    expect(toolSpans(kit)[0]?.attributes['gen_ai.conversation.id']).toBe('thread-7');
  });

  it('does not lend its agent to a tool system of another request nested inside the run', async () => {
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () =>
      invokeAgent({ name: 'support' }, () =>
        withRequestContext({ tenantId: 'globex', userId: 'grace' }, () => createToolSystem([lookup]).dispatcher.execute('lookup', { q: 'a' })),
      ),
    );
    const [span] = toolSpans(kit);
    expect(span?.attributes['isotrace.tenant_id']).toBe('globex');
    expect(span?.attributes['gen_ai.agent.name']).toBeUndefined();
  });

  it('records the loop’s error on the span and rejects with it', async () => {
    const failure = new RangeError('model refused');
    await expect(
      withRequestContext({ tenantId: 'acme', userId: 'ada' }, () =>
        invokeAgent({ name: 'support' }, () => {
          throw failure;
        }),
      ),
    ).rejects.toBe(failure);
    const span = onlySpan(kit, 'invoke_agent support');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBe('RangeError');
  });

  it('rejects outside a request, before the loop runs, and on bad options', async () => {
    let ran = false;
    await expect(invokeAgent({ name: 'support' }, () => (ran = true))).rejects.toBeInstanceOf(RequestContextMissingError);
    expect(ran).toBe(false);
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async () => {
      await expect(invokeAgent({} as never, () => 1)).rejects.toThrow(/options\.name must be a non-empty string/);
      await expect(invokeAgent({ name: 'support', conversationId: '' }, () => 1)).rejects.toThrow(/options\.conversationId/);
      await expect(invokeAgent({ name: 'support', providerName: 7 as never }, () => 1)).rejects.toThrow(/options\.providerName/);
      await expect(invokeAgent({ name: 'support' }, 'fn' as never)).rejects.toThrow(/fn must be a function/);
    });
    expect(kit.spans().filter((span) => span.name.startsWith('invoke_agent'))).toEqual([]);
  });

  it('refuses a conversationId init field that is not a non-empty string', async () => {
    await expect(withRequestContext({ tenantId: 'acme', userId: 'ada', conversationId: '' }, () => 1)).rejects.toThrow(/init\.conversationId/);
    await expect(withRequestContext({ tenantId: 'acme', userId: 'ada', conversationId: 42 as never }, () => 1)).rejects.toThrow(TypeError);
  });
});
