/**
 * The agent's model: an AI SDK mock language model (`MockLanguageModelV4`
 * from `ai/test`) scripted as a planner, so the demo needs no network, no API
 * key, and stays deterministic. Given a user message it asks for tool calls —
 * an `inventory_lookup` for every catalogue item the message names, then
 * `summarize` and `remember` — all in one step (parallel tool calls). Given
 * the tool results it answers in text, as a real model would.
 */
import { MockLanguageModelV4 } from 'ai/test';
import { ITEMS, type Item } from '../shared/catalogue.ts';
import type { Summary } from './summarize-worker.ts';
import type { StockAnswer } from './tools.ts';

type CallOptions = Parameters<MockLanguageModelV4['doGenerate']>[0];
type GenerateResult = Awaited<ReturnType<MockLanguageModelV4['doGenerate']>>;
type PromptMessage = CallOptions['prompt'][number];

const ITEM_PATTERN = new RegExp(`\\b(${ITEMS.join('|')})s?\\b`, 'gi');
const USAGE: GenerateResult['usage'] = { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } };

/**
 * A new planner model for one agent turn. One per turn, never shared:
 * a mock model keeps every prompt it was given (`doGenerateCalls`), and a
 * prompt is request data.
 */
export function plannerModel(): MockLanguageModelV4 {
  return new MockLanguageModelV4({ provider: 'isotrace-demo', modelId: 'planner', doGenerate: async (options) => plan(options.prompt.at(-1)) });
}

function plan(last: PromptMessage | undefined): GenerateResult {
  if (last?.role === 'user') return toolCalls(textOf(last));
  if (last?.role === 'tool') return answer(last.content);
  return { content: [{ type: 'text', text: 'I can only answer questions.' }], finishReason: { unified: 'stop', raw: undefined }, usage: USAGE, warnings: [] };
}

/** Step 1: the tool calls for a user message, each with a model call id (`call_1`, …). */
function toolCalls(message: string): GenerateResult {
  const calls: Array<[string, unknown]> = [...itemsIn(message).map((item): [string, unknown] => ['inventory_lookup', { item }]), ['summarize', { text: message }], ['remember', {}]];
  return {
    content: calls.map(([toolName, input], i) => ({ type: 'tool-call', toolCallId: `call_${i + 1}`, toolName, input: JSON.stringify(input) })),
    finishReason: { unified: 'tool-calls', raw: undefined },
    usage: USAGE,
    warnings: [],
  };
}

/** Step 2: the answer, written from the tool results the SDK sent back. */
function answer(results: Extract<PromptMessage, { role: 'tool' }>['content']): GenerateResult {
  const outputs = results
    .flatMap((part) => (part.type === 'tool-result' && part.output.type === 'json' ? [{ id: part.toolCallId, tool: part.toolName, value: part.output.value }] : []))
    .sort((a, b) => callNumber(a.id) - callNumber(b.id));
  const stock = outputs.filter((o) => o.tool === 'inventory_lookup').map((o) => o.value as unknown as StockAnswer);
  const summary = outputs.find((o) => o.tool === 'summarize')?.value as unknown as Summary | undefined;
  const text =
    stock.length > 0
      ? stock.map((s) => `${s.quantity} × ${s.item} in the ${s.warehouse} warehouse`).join('; ')
      : `You said "${summary?.preview ?? ''}" (${summary?.words ?? 0} words). Ask me about a ${ITEMS.join(', ')}.`;
  return { content: [{ type: 'text', text }], finishReason: { unified: 'stop', raw: undefined }, usage: USAGE, warnings: [] };
}

/** `call_3` → 3: results in the order the model asked for them. */
function callNumber(toolCallId: string): number {
  return Number(toolCallId.slice('call_'.length));
}

function textOf(message: Extract<PromptMessage, { role: 'user' }>): string {
  return message.content.flatMap((part) => (part.type === 'text' ? [part.text] : [])).join(' ');
}

function itemsIn(message: string): Item[] {
  const found = [...message.matchAll(ITEM_PATTERN)].map((match) => match[1]!.toLowerCase() as Item);
  return [...new Set(found)];
}
