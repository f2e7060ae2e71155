import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { expandVariables, UnresolvedVariableError, withRequestContext } from 'isotrace';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createRandom, delay, testSeed } from '../../helpers/random.js';

let kit: TestTracing;

// Variables these tests set or rely on being absent; restored after each test.
const ENV_NAMES = ['ISO_REGION', 'ISO_EMPTY', 'ISO_SHADOWED', 'TENANT_ID', 'REQUEST_ID', 'ISO_MISSING_A', 'ISO_MISSING_B', 'ISO_SECRET'];
let savedEnv: Record<string, string | undefined>;

beforeAll(async () => {
  kit = await setupTestTracing();
});

afterAll(async () => {
  await kit.shutdown();
});

beforeEach(() => {
  savedEnv = Object.fromEntries(ENV_NAMES.map((name) => [name, process.env[name]]));
  for (const name of ENV_NAMES) delete process.env[name];
  return () => {
    for (const [name, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
});

describe('expandVariables in a request', () => {
  it('replaces the identity variables', async () => {
    await withRequestContext({ tenantId: 'acme', userId: 'u1', jobId: 'job-7', correlationId: 'corr-1' }, (ctx) => {
      expect(expandVariables('${REQUEST_ID}|${CORRELATION_ID}|${TENANT_ID}|${USER_ID}|${JOB_ID}')).toBe(`${ctx.requestId}|corr-1|acme|u1|job-7`);
    });
  });

  it('replaces request values, then environment variables', async () => {
    process.env.ISO_REGION = 'eu-west';
    process.env.ISO_SHADOWED = 'from-env';
    await withRequestContext({ tenantId: 't1', userId: 'u1', values: { model: 'small', ISO_SHADOWED: 'from-context', limits: { max: 3 }, count: 2 } }, () => {
      expect(expandVariables('${model}/${ISO_REGION}/${ISO_SHADOWED}')).toBe('small/eu-west/from-context');
      expect(expandVariables('${count} ${limits}')).toBe('2 {"max":3}');
    });
  });

  it('prefers the request identity over an environment variable of the same name', async () => {
    process.env.TENANT_ID = 'env-tenant';
    await withRequestContext({ tenantId: 'ctx-tenant', userId: 'u1' }, () => {
      expect(expandVariables('${TENANT_ID}')).toBe('ctx-tenant');
    });
  });

  it('uses ${NAME:-default} when the variable is unset or empty', async () => {
    process.env.ISO_EMPTY = '';
    process.env.ISO_REGION = 'eu-west';
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => {
      expect(expandVariables('${JOB_ID:-adhoc}')).toBe('adhoc');
      expect(expandVariables('${ISO_EMPTY:-fallback}')).toBe('fallback');
      expect(expandVariables('${ISO_MISSING_A:-}')).toBe('');
      expect(expandVariables('${ISO_REGION:-unused}')).toBe('eu-west');
      expect(expandVariables('${ISO_MISSING_A:-a b/c}')).toBe('a b/c');
    });
  });

  it('keeps $${NAME} as a literal ${NAME}', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => {
      expect(expandVariables('$${TENANT_ID} is ${TENANT_ID}')).toBe('${TENANT_ID} is t1');
    });
  });

  it('leaves text without variables, and non-string values, as they are', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => {
      expect(expandVariables('no variables $ here {TENANT_ID}')).toBe('no variables $ here {TENANT_ID}');
      expect(expandVariables(42)).toBe(42);
      expect(expandVariables(null)).toBeNull();
    });
  });

  it('expands every string of nested objects and arrays into a copy', async () => {
    const template = { path: 'memory/${TENANT_ID}', list: ['${USER_ID}', 3, true, null, { deep: ['${JOB_ID:-none}'] }] };
    const snapshot = structuredClone(template);
    const expanded = await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => expandVariables(template));
    expect(expanded).toEqual({ path: 'memory/t1', list: ['u1', 3, true, null, { deep: ['none'] }] });
    expect(expanded).not.toBe(template);
    expect(template).toEqual(snapshot);
  });

  it('throws UnresolvedVariableError naming every missing variable', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => {
      let caught: unknown;
      try {
        expandVariables({ a: '${ISO_MISSING_A}', b: ['${ISO_MISSING_B}', '${ISO_MISSING_A}'], c: '${TENANT_ID}', d: '${JOB_ID}' });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(UnresolvedVariableError);
      const error = caught as UnresolvedVariableError;
      expect([...error.variables].sort()).toEqual(['ISO_MISSING_A', 'ISO_MISSING_B', 'JOB_ID']);
      expect(error.message).toContain('${ISO_MISSING_A}');
      expect(error.message).toContain('${ISO_MISSING_B}');
      expect(error.message).toContain('${JOB_ID}');
    });
  });
});

describe('expandVariables outside a request', () => {
  it('reads the environment only', () => {
    process.env.ISO_REGION = 'eu-west';
    expect(expandVariables('${ISO_REGION}')).toBe('eu-west');
    expect(expandVariables('${TENANT_ID:-no-tenant}')).toBe('no-tenant');
    expect(() => expandVariables('${REQUEST_ID}')).toThrow(UnresolvedVariableError);
  });
});

describe('expandVariables under concurrency', () => {
  it('gives each of many concurrent requests its own values for the same template', async () => {
    const random = createRandom(testSeed());
    const template = { key: '${TENANT_ID}/${USER_ID}/${REQUEST_ID}/${slot}', list: ['${JOB_ID:-none}'] };
    const mismatches: string[] = [];
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => {
        const tenantId = `t${i % 7}`;
        const userId = `u${i % 5}`;
        const jobId = i % 2 === 0 ? `job-${i}` : undefined;
        return withRequestContext({ tenantId, userId, ...(jobId ? { jobId } : {}), values: { slot: i } }, async (ctx) => {
          for (let round = 0; round < 3; round++) {
            await delay(random.int(0, 3));
            const expanded = expandVariables(template);
            const expected = { key: `${tenantId}/${userId}/${ctx.requestId}/${i}`, list: [jobId ?? 'none'] };
            if (JSON.stringify(expanded) !== JSON.stringify(expected)) mismatches.push(`${JSON.stringify(expanded)} != ${JSON.stringify(expected)}`);
          }
        });
      }),
    );
    expect(mismatches, `seed ${random.seed}`).toEqual([]);
  });
});

describe('expandVariables { env }', () => {
  it('env: false never reads the environment, in a request or outside one', async () => {
    process.env.ISO_SECRET = 'hunter2';
    expect(() => expandVariables('${ISO_SECRET}', { env: false })).toThrow(UnresolvedVariableError);
    // The error does not send the user to the environment it may not read.
    expect(() => expandVariables('${ISO_SECRET}', { env: false })).toThrow(/env: false never reads the environment/);
    expect(expandVariables('${ISO_SECRET:-hidden}', { env: false })).toBe('hidden');
    await withRequestContext({ tenantId: 't1', userId: 'u1', values: { topic: 'billing' } }, () => {
      expect(() => expandVariables('tell me ${ISO_SECRET}', { env: false })).toThrow(UnresolvedVariableError);
      expect(expandVariables({ prompt: 'tenant ${TENANT_ID} asks about ${topic}' }, { env: false })).toEqual({ prompt: 'tenant t1 asks about billing' });
    });
  });

  it('env: [names] reads only the listed variables; env: true (the default) reads any', () => {
    process.env.ISO_SECRET = 'hunter2';
    process.env.ISO_REGION = 'eu-west';
    expect(expandVariables('${ISO_REGION}', { env: ['ISO_REGION'] })).toBe('eu-west');
    expect(() => expandVariables('${ISO_SECRET}', { env: ['ISO_REGION'] })).toThrow(/ISO_SECRET.*allowed environment variables \(ISO_REGION\)/);
    expect(expandVariables('${ISO_SECRET}', { env: true })).toBe('hunter2');
    expect(expandVariables('${ISO_SECRET}')).toBe('hunter2');
  });

  it.each([['a string', 'yes'], ['a number', 1], ['a list with a non-string', ['A', 2]], ['null options', null]])('rejects env as %s with a TypeError naming env', (_what, env) => {
    const options = (env === null ? null : { env }) as never;
    expect(() => expandVariables('x', options)).toThrow(TypeError);
    if (env !== null) expect(() => expandVariables('x', options)).toThrow(/env/);
  });
});

describe('expandVariables resolves own names only', () => {
  const INHERITED = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__'];

  it.each(INHERITED)('${%s} is unresolved (not Object.prototype\'s), outside and inside a request', async (name) => {
    expect(() => expandVariables(`\${${name}}`)).toThrow(UnresolvedVariableError);
    expect(expandVariables(`\${${name}:-none}`)).toBe('none');
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => {
      expect(() => expandVariables(`\${${name}}`)).toThrow(UnresolvedVariableError);
      expect(expandVariables(`\${${name}:-none}`)).toBe('none');
    });
  });

  it('resolves request values that have those names', async () => {
    const values = Object.fromEntries(INHERITED.map((name) => [name, `value-of-${name}`]));
    // Object.fromEntries makes __proto__ an own key, as a request value should be.
    await withRequestContext({ tenantId: 't1', userId: 'u1', values }, () => {
      for (const name of INHERITED) expect(expandVariables(`\${${name}}`)).toBe(`value-of-${name}`);
    });
  });

  it('copies an own __proto__ key as data: the prototype of the copy stays Object.prototype', async () => {
    const input = JSON.parse('{"__proto__": {"admin": "${TENANT_ID}"}, "name": "x"}') as Record<string, unknown>;
    const copy = await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => expandVariables(input));
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.keys(copy)).toEqual(['__proto__', 'name']);
    expect(Object.getOwnPropertyDescriptor(copy, '__proto__')?.value).toEqual({ admin: 't1' });
    expect((copy as { admin?: unknown }).admin).toBeUndefined();
  });
});

describe('expandVariables on deep and cyclic values', () => {
  function nested(depth: number): unknown {
    let value: unknown = '${TENANT_ID:-leaf}';
    for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { next: value };
    return value;
  }

  it('expands values nested up to 1000 levels', () => {
    let value = expandVariables(nested(999));
    for (let i = 998; i >= 0; i--) value = i % 2 === 0 ? (value as unknown[])[0] : (value as { next: unknown }).next;
    expect(value).toBe('leaf');
  });

  it('rejects a value nested 100,000 levels deep with a TypeError, not a stack overflow', () => {
    expect(() => expandVariables(nested(100_000))).toThrow(TypeError);
    expect(() => expandVariables(nested(100_000))).toThrow(/deeper than 1000 levels/);
  });

  it('rejects a value that contains itself with a TypeError, but copies shared (non-cyclic) parts', () => {
    const cyclic: Record<string, unknown> = { a: '${TENANT_ID:-x}' };
    cyclic.self = [cyclic];
    expect(() => expandVariables(cyclic)).toThrow(/contains itself/);
    const shared = { v: '${TENANT_ID:-x}' };
    expect(expandVariables({ one: shared, two: [shared] })).toEqual({ one: { v: 'x' }, two: [{ v: 'x' }] });
  });
});
