/**
 * Property-based tests of expandVariables() templates: arbitrary strings
 * built from `$`, `${`, `$${`, `:-`, nested and stray braces, known and
 * unknown names, and huge inputs, expanded by many concurrent requests.
 *
 * Whatever the template: it throws nothing but UnresolvedVariableError, a
 * request never gets another request's values, names that resolve are never
 * left as `${NAME}` in the output (nested defaults included), and values are
 * inserted as they are, never expanded again.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { expandVariables, UnresolvedVariableError, withRequestContext, type ExpandOptions, type RequestContext } from 'isotrace';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { fuzzSeed, repeated, settles, watchForCrashes, type CrashWatch } from './fuzz-helpers.ts';

let kit: TestTracing;
let watch: CrashWatch;
const seed = fuzzSeed('expand-variables');

const ENV = { FUZZ_REGION: 'region-eu-7', FUZZ_EMPTY: '' } as const;

beforeAll(async () => {
  watch = watchForCrashes();
  kit = await setupTestTracing();
  Object.assign(process.env, ENV);
});

afterEach(() => {
  expect(watch.crashes).toEqual([]);
});

afterAll(async () => {
  for (const name of Object.keys(ENV)) delete process.env[name];
  await kit?.shutdown();
  watch?.uninstall();
});

/** Names that resolve in every request below (identity, a request value, the environment). */
const RESOLVING = ['REQUEST_ID', 'CORRELATION_ID', 'TENANT_ID', 'USER_ID', 'TRACE_ID', 'PLAN', 'FUZZ_REGION'] as const;
// Inherited names (Object.prototype's, on process.env too) never resolve: only own names do.
const INHERITED = ['toString', '__proto__', 'constructor', 'hasOwnProperty'];
const NAMES = [...RESOLVING, 'JOB_ID', 'FUZZ_EMPTY', 'NOPE_MISSING', 'plan', 'TENANT_ID.x', '_', 'a-b.c', ...INHERITED];

/** Pieces templates are made of: syntax, names, and arbitrary text. */
const piece = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('${', '$${', '$', '$$', '{', '}', '}}', ':-', ':', '-', '${}', '${ ', '$}', '\\', '%') },
  { weight: 6, arbitrary: fc.constantFrom(...NAMES) },
  { weight: 3, arbitrary: fc.constantFrom(...NAMES).map((name) => `\${${name}}`) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...NAMES), fc.string({ maxLength: 6 })).map(([name, fallback]) => `\${${name}:-${fallback}}`) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
);

const smallTemplate = fc.array(piece, { maxLength: 30 }).map((pieces) => pieces.join(''));

/** Nested defaults, some never closed, e.g. `${NOPE:-${FUZZ_EMPTY:-${TENANT_ID}}}`. */
const nestedTemplate = fc
  .tuple(fc.array(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 6 }), fc.constantFrom(...NAMES), fc.integer({ min: 0, max: 6 }), smallTemplate)
  .map(([outer, inner, closers, tail]) => `${outer.map((name) => `\${${name}:-`).join('')}\${${inner}}${'}'.repeat(closers)}${tail}`);

const hugeTemplate = fc.oneof(
  repeated('${', 10_000, 100_000),
  repeated('$${', 10_000, 50_000),
  repeated('${TENANT_ID:-', 10_000, 50_000),
  fc.integer({ min: 5_000, max: 30_000 }).map((n) => `${'${NOPE_MISSING:-'.repeat(n)}\${USER_ID}${'}'.repeat(n)}`),
  repeated('${TENANT_ID}', 5_000, 20_000),
  repeated('}{$', 10_000, 50_000),
  fc.integer({ min: 10_000, max: 100_000 }).map((n) => `\${${'A'.repeat(n)}}`),
);

const template = fc.oneof({ weight: 8, arbitrary: smallTemplate }, { weight: 3, arbitrary: nestedTemplate }, { weight: 1, arbitrary: hugeTemplate });

/** What one request resolves each name to. */
function valuesOf(ctx: RequestContext): Record<(typeof RESOLVING)[number], string> {
  return {
    REQUEST_ID: ctx.requestId,
    CORRELATION_ID: ctx.correlationId,
    TENANT_ID: ctx.tenantId,
    USER_ID: ctx.userId,
    TRACE_ID: ctx.traceId,
    PLAN: String(ctx.get('PLAN')),
    FUZZ_REGION: ENV.FUZZ_REGION,
  };
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

function expandSafely(input: unknown, options?: ExpandOptions): Outcome {
  try {
    return { ok: true, value: expandVariables(input, options) };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Every string inside a value (expandVariables returns strings, arrays and plain objects). */
function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(stringsIn);
  return [];
}

/** The markers that identify a request: unique per request, so they can only come from that request. */
function markersOf(ctx: RequestContext): string[] {
  return [ctx.requestId, ctx.tenantId, ctx.userId, String(ctx.get('PLAN'))];
}

/** Expands `input` in `count` concurrent requests, each with its own identity and values, and checks the properties. */
async function expandConcurrently(input: unknown, count: number, checkUnexpanded: boolean): Promise<void> {
  const requests = Array.from({ length: count }, () => ({ tenantId: `tenant-${randomUUID()}`, userId: `user-${randomUUID()}`, values: { PLAN: `plan-${randomUUID()}` } }));
  const seen = await Promise.all(
    requests.map((init, i) =>
      withRequestContext(init, async (ctx) => {
        // Interleave: requests expand in an order that differs from the one they started in.
        for (let turn = 0; turn < (i * 7) % 3; turn++) await new Promise((resolve) => setImmediate(resolve));
        return { ctx, outcome: expandSafely(input) };
      }),
    ),
  );
  const allMarkers = seen.map(({ ctx }) => markersOf(ctx));
  seen.forEach(({ ctx, outcome }, i) => {
    if (!outcome.ok) {
      expect(outcome.error, `request ${i} threw ${String(outcome.error)}`).toBeInstanceOf(UnresolvedVariableError);
      expect((outcome.error as UnresolvedVariableError).variables.length).toBeGreaterThan(0);
      return;
    }
    const output = stringsIn(outcome.value).join('\u0000');
    // An inherited name never resolves to Object.prototype's function or object.
    expect(output, 'an inherited property reached the output').not.toMatch(/\[native code\]|\[object /);
    // Never another request's values.
    allMarkers.forEach((markers, j) => {
      if (j === i) return;
      for (const marker of markers) expect(output.includes(marker), `request ${i} got request ${j}'s ${marker}`).toBe(false);
    });
    // Names that resolve are never left unexpanded (templates without `$$` escapes, which legitimately produce `${NAME}`).
    if (checkUnexpanded) {
      const values = valuesOf(ctx);
      for (const name of RESOLVING) {
        expect(output.includes(`\${${name}}`), `\${${name}} left in the output of ${JSON.stringify(input).slice(0, 300)}`).toBe(false);
        expect(values[name].length).toBeGreaterThan(0);
      }
    }
  });
}

describe('fuzzed expandVariables() templates (fast-check, concurrent requests)', () => {
  it('throw only UnresolvedVariableError, never mix requests, and leave no resolvable ${NAME} unexpanded', async () => {
    await fc.assert(
      fc.asyncProperty(template, async (text) => {
        await settles(expandConcurrently(text, 6, !text.includes('$$')), `expanding a ${text.length}-character template`);
      }),
      { seed, numRuns: 400 },
    );
    expect(watch.crashes).toEqual([]);
  });

  it('expand objects and arrays of templates (with __proto__ keys) the same way, without touching prototypes', async () => {
    const structure = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, smallTemplate, fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(fc.oneof(fc.string({ maxLength: 5 }), fc.constant('__proto__'), fc.constant('constructor')), tie('node'), { maxKeys: 4 })),
    })).node;
    await fc.assert(
      fc.asyncProperty(structure, async (value) => {
        // Through JSON, as a parsed config would arrive: `__proto__` is an own key then.
        const input = JSON.parse(JSON.stringify(value)) as unknown;
        await settles(expandConcurrently(input, 4, !JSON.stringify(input).includes('$$')), 'expanding a structure');
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        expect(Object.prototype).not.toHaveProperty('TENANT_ID');
      }),
      { seed, numRuns: 200 },
    );
  });

  it('with { env: false }, never insert an environment value and throw only UnresolvedVariableError', async () => {
    await fc.assert(
      fc.asyncProperty(template, async (text) => {
        await withRequestContext({ tenantId: 'acme', userId: 'u1' }, () => {
          const outcome = expandSafely(text, { env: false });
          if (!outcome.ok) {
            expect(outcome.error).toBeInstanceOf(UnresolvedVariableError);
            return;
          }
          if (!text.includes(ENV.FUZZ_REGION)) expect(stringsIn(outcome.value).join('')).not.toContain(ENV.FUZZ_REGION);
        });
      }),
      { seed, numRuns: 300 },
    );
  });

  it('resolve nested defaults like a shell: the first set variable wins, however deep', async () => {
    await withRequestContext({ tenantId: 'acme', userId: 'u1' }, () => {
      expect(expandVariables('${NOPE_MISSING:-${TENANT_ID}}')).toBe('acme');
      expect(expandVariables('${TENANT_ID:-${NOPE_MISSING}}')).toBe('acme');
      expect(expandVariables('${NOPE_MISSING:-redis://${FUZZ_REGION}:6379}')).toBe('redis://region-eu-7:6379');
      expect(expandVariables('${NOPE_MISSING:-${FUZZ_EMPTY:-${USER_ID}}}')).toBe('u1');
      expect(expandVariables(`${'${NOPE_MISSING:-'.repeat(50_000)}\${USER_ID}${'}'.repeat(50_000)}`)).toBe('u1');
      expect(expandVariables('$${TENANT_ID} ${NOPE_MISSING:-$${USER_ID}}')).toBe('${TENANT_ID} ${USER_ID}');
      expect(() => expandVariables('${NOPE_MISSING:-${ALSO_MISSING}}')).toThrow(UnresolvedVariableError);
    });
  });

  it('inserts values as they are: a value holding ${NAME} is never expanded again', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...NAMES).map((name) => `\${${name}}`), async (injected) => {
        await withRequestContext({ tenantId: 'acme', userId: 'u1', values: { PLAN: injected } }, () => {
          expect(expandVariables('${PLAN}')).toBe(injected);
          expect(expandVariables('${NOPE_MISSING:-${PLAN}}')).toBe(injected);
        });
      }),
      { seed, numRuns: 20 },
    );
  });
});
