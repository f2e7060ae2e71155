// Recording tool arguments and results: off by default, on through startTracing() or per tool system,
// always after `redact`, and never the raw value when `redact` fails.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { withRequestContext, type RedactInfo } from 'isotrace';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createToolSystem, Tool, type ToolSystemOptions } from 'isotrace/tools';
import { Echo, onlySpan } from './tool-test-helpers.ts';

const ARGUMENTS = 'gen_ai.tool.call.arguments';
const RESULT = 'gen_ai.tool.call.result';
const SECRET = 'sk-live-0123456789-SECRET';

/** Answers with a result that differs from its arguments, so the two attributes can be told apart. */
class Lookup extends Tool<{ q: string }, { answer: string }> {
  static override toolName = 'lookup';
  run({ q }: { q: string }): { answer: string } {
    return { answer: `found ${q}` };
  }
}

/** Runs one tool call in a fresh request, with a fresh tool system made with `options`. */
function runTool(name: string, args: unknown, options?: ToolSystemOptions): Promise<unknown> {
  return withRequestContext({ tenantId: 't1', userId: 'u1' }, () => createToolSystem([Echo, Lookup], options).dispatcher.execute(name, args));
}

/** Every attribute value of every span and span event, as one text to search. */
function everythingRecorded(spans: ReadableSpan[]): string {
  return JSON.stringify(spans.map((span) => ({ attributes: span.attributes, events: span.events.map((event) => event.attributes), status: span.status })));
}

describe('with the default startTracing() options', () => {
  let kit: TestTracing;

  beforeAll(async () => {
    kit = await setupTestTracing();
  });
  afterAll(() => kit.shutdown());
  beforeEach(() => kit.reset());

  it('records neither arguments nor results', async () => {
    expect(await runTool('lookup', { q: SECRET })).toEqual({ answer: `found ${SECRET}` });
    const span = onlySpan(kit, 'execute_tool lookup');
    expect(span.attributes).not.toHaveProperty([ARGUMENTS]);
    expect(span.attributes).not.toHaveProperty([RESULT]);
    expect(everythingRecorded(kit.spans())).not.toContain(SECRET);
  });

  it('records both, as JSON, when the tool system is created with recordToolArguments: true', async () => {
    await runTool('lookup', { q: 'lamp' }, { recordToolArguments: true });
    expect(onlySpan(kit, 'execute_tool lookup').attributes).toMatchObject({ [ARGUMENTS]: '{"q":"lamp"}', [RESULT]: '{"answer":"found lamp"}' });
  });

  it('records a string as it is, not JSON-quoted', async () => {
    await runTool('echo', 'plain text', { recordToolArguments: true });
    expect(onlySpan(kit, 'execute_tool echo').attributes).toMatchObject({ [ARGUMENTS]: 'plain text', [RESULT]: 'plain text' });
  });

  it('applies the tool system’s redact to arguments and results, telling it the tool and the kind', async () => {
    const calls: Array<[unknown, RedactInfo]> = [];
    const redact = (value: unknown, info: RedactInfo): unknown => {
      calls.push([value, info]);
      return `${info.kind} of ${info.toolName} redacted`;
    };
    await runTool('lookup', { q: SECRET }, { recordToolArguments: true, redact });
    expect(calls).toEqual([
      [{ q: SECRET }, { toolName: 'lookup', kind: 'arguments' }],
      [{ answer: `found ${SECRET}` }, { toolName: 'lookup', kind: 'result' }],
    ]);
    expect(onlySpan(kit, 'execute_tool lookup').attributes).toMatchObject({ [ARGUMENTS]: 'arguments of lookup redacted', [RESULT]: 'result of lookup redacted' });
    expect(everythingRecorded(kit.spans())).not.toContain(SECRET);
  });

  it('a throwing redact records [redaction failed] and never the raw value; the tool call still succeeds', async () => {
    const redact = (value: unknown): unknown => {
      throw new Error(`cannot redact ${JSON.stringify(value)}`);
    };
    expect(await runTool('lookup', { q: SECRET }, { recordToolArguments: true, redact })).toEqual({ answer: `found ${SECRET}` });
    const span = onlySpan(kit, 'execute_tool lookup');
    expect(span.attributes).toMatchObject({ [ARGUMENTS]: '[redaction failed]', [RESULT]: '[redaction failed]' });
    expect(everythingRecorded(kit.spans())).not.toContain(SECRET);
  });

  it('truncates long values and says by how much', async () => {
    const long = 'x'.repeat(20_000);
    await runTool('echo', long, { recordToolArguments: true });
    const recorded = onlySpan(kit, 'execute_tool echo').attributes[ARGUMENTS];
    expect(typeof recorded).toBe('string');
    expect((recorded as string).length).toBeLessThan(9_000);
    expect((recorded as string).startsWith('x'.repeat(8_000))).toBe(true);
    expect(recorded).toMatch(/truncated \d+ chars/);
  });

  it('records an unserializable value as a marker instead of failing the call', async () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(await runTool('echo', circular, { recordToolArguments: true })).toBe(circular);
    expect(onlySpan(kit, 'execute_tool echo').attributes[ARGUMENTS]).toBe('[unserializable]');
  });
});

describe('with recordToolArguments: true and a redact hook in startTracing()', () => {
  let kit: TestTracing;
  const seen: RedactInfo[] = [];

  beforeAll(async () => {
    kit = await setupTestTracing({
      recordToolArguments: true,
      redact: (value, info) => {
        seen.push(info);
        return JSON.stringify(value).replaceAll(SECRET, '[secret]');
      },
    });
  });
  afterAll(() => kit.shutdown());
  beforeEach(() => {
    kit.reset();
    seen.length = 0;
  });

  it('records arguments and results of every tool system, after the global redact', async () => {
    await runTool('lookup', { q: SECRET });
    expect(onlySpan(kit, 'execute_tool lookup').attributes).toMatchObject({ [ARGUMENTS]: '{"q":"[secret]"}', [RESULT]: '{"answer":"found [secret]"}' });
    expect(seen).toEqual([
      { toolName: 'lookup', kind: 'arguments' },
      { toolName: 'lookup', kind: 'result' },
    ]);
    expect(everythingRecorded(kit.spans())).not.toContain(SECRET);
  });

  it('a tool system created with recordToolArguments: false records nothing', async () => {
    await runTool('lookup', { q: SECRET }, { recordToolArguments: false });
    const span = onlySpan(kit, 'execute_tool lookup');
    expect(span.attributes).not.toHaveProperty([ARGUMENTS]);
    expect(span.attributes).not.toHaveProperty([RESULT]);
    expect(seen).toEqual([]);
  });

  it('a tool system’s own redact replaces the global one', async () => {
    await runTool('echo', SECRET, { redact: () => '[per-system]' });
    expect(onlySpan(kit, 'execute_tool echo').attributes).toMatchObject({ [ARGUMENTS]: '[per-system]', [RESULT]: '[per-system]' });
    expect(seen).toEqual([]);
  });
});
