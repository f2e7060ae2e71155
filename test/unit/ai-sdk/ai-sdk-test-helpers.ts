// Scripted AI SDK 7 models (MockLanguageModelV4 from 'ai/test'): no network, no API keys.
import { convertArrayToReadableStream, MockLanguageModelV4 } from 'ai/test';

/** One model call's worth of tool calls: [toolCallId, toolName, input]. */
export type ScriptedCall = readonly [toolCallId: string, toolName: string, input: unknown];

const usage = { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } };

/** A model whose first generate call asks for `calls` (all in one step, so they run in parallel) and whose second answers `text`. */
export function toolCallingModel(calls: readonly ScriptedCall[], text = 'done'): MockLanguageModelV4 {
  return new MockLanguageModelV4({
    doGenerate: [
      {
        content: calls.map(([toolCallId, toolName, input]) => ({ type: 'tool-call' as const, toolCallId, toolName, input: JSON.stringify(input) })),
        finishReason: { unified: 'tool-calls', raw: undefined },
        usage,
        warnings: [],
      },
      { content: [{ type: 'text', text }], finishReason: { unified: 'stop', raw: undefined }, usage, warnings: [] },
    ],
  });
}

/** The streaming twin of toolCallingModel(): the first stream asks for `calls`, the second streams `text`. */
export function streamingToolCallingModel(calls: readonly ScriptedCall[], text = 'done'): MockLanguageModelV4 {
  return new MockLanguageModelV4({
    doStream: [
      {
        stream: convertArrayToReadableStream([
          { type: 'stream-start', warnings: [] },
          ...calls.map(([toolCallId, toolName, input]) => ({ type: 'tool-call' as const, toolCallId, toolName, input: JSON.stringify(input) })),
          { type: 'finish', finishReason: { unified: 'tool-calls', raw: undefined }, usage },
        ]),
      },
      {
        stream: convertArrayToReadableStream([
          { type: 'stream-start', warnings: [] },
          { type: 'text-start', id: 't1' },
          { type: 'text-delta', id: 't1', delta: text },
          { type: 'text-end', id: 't1' },
          { type: 'finish', finishReason: { unified: 'stop', raw: undefined }, usage },
        ]),
      },
    ],
  });
}
