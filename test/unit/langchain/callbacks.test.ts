/**
 * bindCallbacks(): LangChain callback handlers run in the request that caused
 * each callback, whatever LANGCHAIN_CALLBACKS_BACKGROUND says. Unbound, in
 * LangChain's default background mode, a queued callback runs in the async
 * context of the queue's previous task: another request's (the control).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import { awaitAllCallbacks } from '@langchain/core/callbacks/promises';
import type { LLMResult } from '@langchain/core/outputs';
import { tool } from '@langchain/core/tools';
import { z } from 'zod';
import { tryGetRequestContext, withRequestContext } from 'isotrace';
import { bindCallbacks } from 'isotrace/langchain';
import { useTestTracing } from '../../helpers/tracing.ts';
import { scriptedAgent, USER_TURN } from './langchain-test-helpers.ts';

useTestTracing();

const weather = tool(async ({ city }: { city: string }) => `sunny in ${city}`, { name: 'get_weather', description: 'Weather', schema: z.object({ city: z.string() }) });

const BACKGROUND = 'LANGCHAIN_CALLBACKS_BACKGROUND';
const backgroundBefore = process.env[BACKGROUND];
afterEach(() => {
  if (backgroundBefore === undefined) delete process.env[BACKGROUND];
  else process.env[BACKGROUND] = backgroundBefore;
});

/** One callback as a handler saw it: which request caused it (from its arguments) and which request was active. */
interface Sighting {
  event: string;
  caused: string | undefined;
  ranIn: string | undefined;
}

/** Records the request each tool-start and model-end callback ran in; tells the causing request apart by the tags the fake model put in ids and texts. */
class RequestRecorder extends BaseCallbackHandler {
  name = 'request-recorder';
  readonly sightings: Sighting[] = [];

  override async handleToolStart(_tool: unknown, _input: string, _runId: string, _parent?: string, _tags?: string[], _metadata?: unknown, _runName?: string, toolCallId?: string) {
    this.#saw('handleToolStart', toolCallId?.split(':')[0]);
    // A slow handler: the queue's next task starts only after this one.
    await new Promise((resolve) => setImmediate(resolve));
  }

  override async handleToolEnd() {
    this.#saw('handleToolEnd', undefined);
  }

  override async handleLLMEnd(output: LLMResult) {
    this.#saw('handleLLMEnd', /"([\w-]+):call"|done ([\w-]+)/.exec(JSON.stringify(output))?.slice(1).find(Boolean));
  }

  #saw(event: string, tag: string | undefined) {
    this.sightings.push({ event, caused: tag, ranIn: tryGetRequestContext()?.userId });
  }
}

/** Runs `requests` agent runs concurrently, each as its own request (user `r<i>`), with the handlers `handlersFor(i)` gives. */
async function runRequests(requests: number, handlersFor: (i: number) => BaseCallbackHandler[]): Promise<void> {
  await Promise.all(
    Array.from({ length: requests }, (_, i) =>
      withRequestContext({ tenantId: `t${i % 10}`, userId: `r${i}` }, () => {
        const agent = scriptedAgent([weather], [{ name: 'get_weather', args: { city: 'Oslo' }, id: `r${i}:call` }], `r${i}`);
        return agent.invoke(USER_TURN, { callbacks: handlersFor(i) });
      }),
    ),
  );
  await awaitAllCallbacks();
}

/** Callbacks that ran outside the request that caused them (by the cause read from their arguments, or by the handler's own request). */
function misplaced(sightings: readonly Sighting[], ownRequest?: string): Sighting[] {
  return sightings.filter(({ caused, ranIn }) => ranIn !== (ownRequest ?? caused));
}

describe('bindCallbacks', () => {
  it('control: unbound handlers in background mode mostly run inside another request', async () => {
    delete process.env[BACKGROUND];
    const recorders = Array.from({ length: 100 }, () => new RequestRecorder());
    await runRequests(100, (i) => [recorders[i]!]);
    const wrong = recorders.flatMap((recorder, i) => misplaced(recorder.sightings, `r${i}`));
    expect(recorders.every((recorder) => recorder.sightings.length === 4)).toBe(true);
    expect(wrong.length).toBeGreaterThan(0);
  });

  for (const background of ['true', 'false'] as const) {
    it(`runs per-request handlers in their own request (LANGCHAIN_CALLBACKS_BACKGROUND=${background})`, async () => {
      process.env[BACKGROUND] = background;
      const recorders = Array.from({ length: 100 }, () => new RequestRecorder());
      expect(recorders[0]!.awaitHandlers).toBe(background === 'false');
      await runRequests(100, (i) => [bindCallbacks(recorders[i]!)]);
      expect(recorders.map((recorder) => recorder.sightings.length)).toEqual(Array.from({ length: 100 }, () => 4));
      expect(recorders.flatMap((recorder, i) => misplaced(recorder.sightings, `r${i}`))).toEqual([]);
    });

    it(`runs one module-level handler in the request of each callback (LANGCHAIN_CALLBACKS_BACKGROUND=${background})`, async () => {
      process.env[BACKGROUND] = background;
      const shared = new RequestRecorder();
      const bound = bindCallbacks(shared);
      await runRequests(100, () => [bound]);
      const caused = shared.sightings.filter(({ caused }) => caused !== undefined);
      // Per request: two model ends and one tool start name their request.
      expect(caused).toHaveLength(300);
      expect(misplaced(caused)).toEqual([]);
      expect(shared.sightings.filter(({ ranIn }) => ranIn === undefined)).toEqual([]);
    });
  }

  it('keeps the callback order and lets awaitAllCallbacks() wait for queued callbacks (background mode)', async () => {
    delete process.env[BACKGROUND];
    const recorder = new RequestRecorder();
    await withRequestContext({ tenantId: 't', userId: 'solo' }, () =>
      scriptedAgent([weather], [{ name: 'get_weather', args: { city: 'Oslo' }, id: 'solo:call' }], 'solo').invoke(USER_TURN, { callbacks: [bindCallbacks(recorder)] }),
    );
    await awaitAllCallbacks();
    expect(recorder.sightings.map(({ event }) => event)).toEqual(['handleLLMEnd', 'handleToolStart', 'handleToolEnd', 'handleLLMEnd']);
  });

  it('binds an object of handle* methods, and an array of handlers', async () => {
    delete process.env[BACKGROUND];
    const ranIn: Array<string | undefined> = [];
    const [methods, recorder] = bindCallbacks([{ handleToolEnd: () => void ranIn.push(tryGetRequestContext()?.userId) }, new RequestRecorder()]);
    expect(methods).toBeInstanceOf(BaseCallbackHandler);
    await Promise.all(
      ['a', 'b', 'c'].map((userId) =>
        withRequestContext({ tenantId: 't', userId }, () =>
          scriptedAgent([weather], [{ name: 'get_weather', args: { city: 'Oslo' }, id: `${userId}:call` }], userId).invoke(USER_TURN, { callbacks: [methods!, recorder!] }),
        ),
      ),
    );
    await awaitAllCallbacks();
    expect(ranIn.sort()).toEqual(['a', 'b', 'c']);
  });

  it("reports a queued handler's error as LangChain does, without failing the run", async () => {
    delete process.env[BACKGROUND];
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const broken = bindCallbacks({
        handleToolEnd() {
          throw new Error('handler bug');
        },
      });
      const result = await withRequestContext({ tenantId: 't', userId: 'u' }, () =>
        scriptedAgent([weather], [{ name: 'get_weather', args: { city: 'Oslo' }, id: 'u:call' }], 'u').invoke(USER_TURN, { callbacks: [broken] }),
      );
      await awaitAllCallbacks();
      expect(result.messages.at(-1)?.content).toBe('done u');
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/handleToolEnd: Error: handler bug/));
    } finally {
      warn.mockRestore();
    }
  });

  it('returns a bound handler unchanged when bound again, and keeps the original as it was', () => {
    const recorder = new RequestRecorder();
    const bound = bindCallbacks(recorder);
    expect(bindCallbacks(bound)).toBe(bound);
    expect(bound.name).toBe('request-recorder');
    expect(bound.awaitHandlers).toBe(true);
    expect(bound.copy().awaitHandlers).toBe(true);
    expect(recorder.awaitHandlers).toBe(process.env[BACKGROUND] === 'false');
  });

  it('throws TypeError for anything but handlers', () => {
    expect(() => bindCallbacks(null as never)).toThrow(TypeError);
    expect(() => bindCallbacks([new RequestRecorder(), 'log' as never])).toThrow(/handlers\[1\]/);
  });
});
