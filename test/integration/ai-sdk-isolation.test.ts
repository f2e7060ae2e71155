/**
 * AI SDK isolation: 100 concurrent requests over 10 tenants, each driving
 * generateText() or streamText() with a scripted MockLanguageModelV4 that asks
 * for parallel tool calls (the same call ids in every request), half of them
 * with the SDK's own OpenTelemetry integration on. Tools wait random delays
 * and check, from inside, that they run in their own request (tenant, user,
 * request-scoped value, SharedState, trace); every call is one audited
 * execute_tool span, and the spans pass expectNoCrossRequestLeakage.
 * Negative controls: a tool system kept at module level and a module-level
 * "current request" are both caught.
 *
 * Replay a failure with ISOTRACE_TEST_SEED=<printed seed>.
 */
import { describe, expect, it } from 'vitest';
import { trace } from '@opentelemetry/api';
import { OpenTelemetry } from '@ai-sdk/otel';
import { generateText, isStepCount, streamText, tool, type ToolSet } from 'ai';
import { z } from 'zod';
import { getRequestContext, withRequestContext, type RequestContext } from 'isotrace';
import { isotraceTools } from 'isotrace/ai-sdk';
import { auditSpans, expectNoCrossRequestLeakage } from 'isotrace/testing';
import { createToolSystem, defineTool, type ToolSystem } from 'isotrace/tools';
import { createRandom, delay, testSeed, type Random } from '../helpers/random.ts';
import { useTestTracing } from '../helpers/tracing.ts';
import { streamingToolCallingModel, toolCallingModel, type ScriptedCall } from '../unit/ai-sdk/ai-sdk-test-helpers.ts';

const REQUESTS = 100;
const TENANTS = 10;

const kit = useTestTracing();

/** What a tool saw about its request, checked against the request that called the model. */
interface Sighting {
  requestId: string;
  tenantId: string;
  userId: string;
  secret: unknown;
  stored: unknown;
  traceId: string | undefined;
}

function sighting(): Sighting {
  const ctx = getRequestContext();
  return { requestId: ctx.requestId, tenantId: ctx.tenantId, userId: ctx.userId, secret: ctx.get('secret'), stored: undefined, traceId: trace.getActiveSpan()?.spanContext().traceId };
}

/** Built once, at module level, as an app would: each request gets its own tool system at its first call. */
function appTools(random: Random) {
  const sightings: Array<{ callId: string } & Sighting> = [];
  const tools = isotraceTools({
    lookup: tool({
      description: 'Looks a key up in the tenant’s notes',
      inputSchema: z.object({ key: z.string() }),
      execute: async ({ key }, { toolCallId }) => {
        await delay(random.int(0, 8));
        const seen = sighting();
        seen.stored = await getRequestContext().sharedState.get(key);
        await delay(random.int(0, 8));
        sightings.push({ callId: toolCallId, ...seen });
        return { key, value: seen.stored };
      },
    }),
    progress: tool({
      inputSchema: z.object({ n: z.number() }),
      async *execute({ n }, { toolCallId }) {
        for (let step = 1; step <= n; step++) {
          await delay(random.int(0, 5));
          sightings.push({ callId: `${toolCallId}#${step}`, ...sighting() });
          yield { step };
        }
      },
    }),
  });
  return { tools, sightings };
}

interface Turn {
  tenantId: string;
  userId: string;
  secret: string;
  streaming: boolean;
  telemetry: boolean;
}

const CALLS: readonly ScriptedCall[] = [
  ['c1', 'lookup', { key: 'plan' }],
  ['c2', 'lookup', { key: 'region' }],
  ['c3', 'progress', { n: 3 }],
];

/** One request: the model asks for three parallel calls (the same ids in every request), then answers. */
async function runTurn(tools: ToolSet, turn: Turn): Promise<{ ctx: RequestContext; text: string }> {
  return withRequestContext({ tenantId: turn.tenantId, userId: turn.userId, values: { secret: turn.secret } }, async (ctx) => {
    await ctx.sharedState.set('plan', `plan-of-${turn.tenantId}/${turn.userId}`);
    await ctx.sharedState.set('region', `region-of-${turn.tenantId}/${turn.userId}`);
    const telemetry = turn.telemetry ? { telemetry: { integrations: [new OpenTelemetry()] } } : {};
    if (!turn.streaming) {
      const result = await generateText({ model: toolCallingModel(CALLS, turn.secret), tools, prompt: 'go', stopWhen: isStepCount(2), ...telemetry });
      return { ctx, text: result.text };
    }
    const result = streamText({ model: streamingToolCallingModel(CALLS, turn.secret), tools, prompt: 'go', stopWhen: isStepCount(2), ...telemetry });
    return { ctx, text: await result.text };
  });
}

function plan(random: Random): Turn[] {
  return Array.from({ length: REQUESTS }, (_, i) => ({
    tenantId: `tenant-${i % TENANTS}`,
    userId: `user-${random.int(0, 3)}`,
    secret: `secret-${i}-${random.int(0, 1e9)}`,
    streaming: random.next() < 0.5,
    telemetry: random.next() < 0.5,
  }));
}

describe('AI SDK tools under concurrent requests', () => {
  it(`keeps ${REQUESTS} concurrent agent runs over ${TENANTS} tenants apart, with and without the SDK’s telemetry`, async () => {
    const random = createRandom(testSeed());
    const context = `seed ${random.seed}`;
    const { tools, sightings } = appTools(random);
    const turns = plan(random);

    const runs = await Promise.all(turns.map((turn) => runTurn(tools, turn)));

    const byRequest = new Map(runs.map(({ ctx }, i) => [ctx.requestId, { ctx, turn: turns[i]! }]));
    for (const [i, { text }] of runs.entries()) expect(text, context).toBe(turns[i]!.secret);
    // 2 lookups and 3 progress steps per request, each seen from inside its own request.
    expect(sightings, context).toHaveLength(REQUESTS * 5);
    const bySighting = new Map<string, number>();
    for (const seen of sightings) {
      const own = byRequest.get(seen.requestId);
      expect(own, `${seen.callId}: a request that ran (${context})`).toBeDefined();
      const { ctx, turn } = own!;
      expect([seen.tenantId, seen.userId, seen.secret, seen.traceId], `${seen.callId} in ${ctx.requestId} (${context})`).toEqual([turn.tenantId, turn.userId, turn.secret, ctx.traceId]);
      if (seen.callId === 'c1') expect(seen.stored, context).toBe(`plan-of-${turn.tenantId}/${turn.userId}`);
      if (seen.callId === 'c2') expect(seen.stored, context).toBe(`region-of-${turn.tenantId}/${turn.userId}`);
      bySighting.set(seen.requestId, (bySighting.get(seen.requestId) ?? 0) + 1);
    }
    expect([...bySighting.values()].every((count) => count === 5), context).toBe(true);

    // One audited execute_tool span per call: with the SDK's telemetry on, the SDK's own span, never a second one.
    const toolSpans = kit.spans().filter((span) => span.attributes['gen_ai.operation.name'] === 'execute_tool');
    expect(toolSpans, context).toHaveLength(REQUESTS * CALLS.length);
    for (const span of toolSpans) {
      const { ctx, turn } = byRequest.get(span.attributes['isotrace.request_id'] as string)!;
      expect(span.attributes['isotrace.registry_id'], context).toBe(`user_${turn.userId}_${ctx.requestId}_1`);
      expect(span.attributes['isotrace.audit.result'], context).toBe('pass');
      expect(span.spanContext().traceId, context).toBe(ctx.traceId);
      expect(span.attributes['gen_ai.execute_tool.duration'] !== undefined, `SDK span iff telemetry (${context})`).toBe(turn.telemetry);
    }
    const report = expectNoCrossRequestLeakage(kit.spans());
    expect(report.requests).toBe(REQUESTS);
    expect(report.toolSpans).toBe(REQUESTS * CALLS.length);
  });

  it('catches a planted leak: one tool system kept at module level and used by every request', async () => {
    // THE PLANTED BUG: the first request's tool system, cached outside any request and reused by the rest.
    let shared: ToolSystem | undefined;
    const echo = defineTool({ name: 'lookup', execute: (args: unknown) => args });
    const leaky: ToolSet = {
      lookup: tool({
        inputSchema: z.object({ key: z.string() }),
        execute: (input, { toolCallId }) => (shared ??= createToolSystem([echo])).dispatcher.execute('lookup', input, { callId: toolCallId }),
      }),
    };
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        withRequestContext({ tenantId: `tenant-${i}`, userId: 'u' }, () => generateText({ model: toolCallingModel([CALLS[0]!]), tools: leaky, prompt: 'go', stopWhen: isStepCount(2) })),
      ),
    );
    const report = auditSpans(kit.spans());
    expect(report.violations.map((v) => v.check)).toContain('context-owner');
    expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(/cross-request leak/);
  });

  it('catches a planted leak: a tool reading a module-level “current request”', async () => {
    // THE PLANTED BUG: the request that started last, kept in a module-level variable that the tool reads.
    let current: RequestContext | undefined;
    const seenTenants: string[] = [];
    const tools = isotraceTools({
      lookup: tool({
        inputSchema: z.object({ key: z.string() }),
        execute: async ({ key }) => {
          seenTenants.push(current!.tenantId);
          return current!.sharedState.get(key);
        },
      }),
    });
    const tenants = Array.from({ length: 10 }, (_, i) => `tenant-${i}`);
    await Promise.all(
      tenants.map((tenantId) =>
        withRequestContext({ tenantId, userId: 'u' }, (ctx) => {
          current = ctx;
          return generateText({ model: toolCallingModel([CALLS[0]!]), tools, prompt: 'go', stopWhen: isStepCount(2), telemetry: { integrations: [new OpenTelemetry()] } });
        }),
      ),
    );
    // Every tool ran after the last request had started: nine of ten saw another tenant.
    expect(seenTenants.filter((tenant) => tenant !== 'tenant-9')).toEqual([]);
    const violating = kit.spans().filter((span) => span.attributes['isotrace.audit.result'] === 'violation');
    expect(violating.map((span) => span.name)).toEqual(Array(9).fill('execute_tool lookup'));
    expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(/shared-state/);
  });
});
