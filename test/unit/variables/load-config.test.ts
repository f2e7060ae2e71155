import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig, parseConfig, UnresolvedVariableError, withRequestContext } from 'isotrace';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';

let kit: TestTracing;
let dir: string;

beforeAll(async () => {
  kit = await setupTestTracing();
  dir = await mkdtemp(join(tmpdir(), 'isotrace-config-'));
});

afterAll(async () => {
  await kit.shutdown();
  await rm(dir, { recursive: true, force: true });
});

const ENV_NAMES = ['ISO_NAME', 'ISO_PORT', 'ISO_ENABLED', 'ISO_SECRET'];

beforeEach(() => {
  const saved = Object.fromEntries(ENV_NAMES.map((name) => [name, process.env[name]]));
  for (const name of ENV_NAMES) delete process.env[name];
  return () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
});

const TEMPLATE = ['service: agent', 'memory:', '  path: memory/${TENANT_ID}/${USER_ID}', '  ttl: 60', 'tools:', '  - search', '  - ${ISO_NAME:-weather}', ''].join('\n');

describe('parseConfig and loadConfig', () => {
  it('parses YAML text and expands variables from the request', async () => {
    const config = await withRequestContext({ tenantId: 'acme', userId: 'u1' }, () => parseConfig(TEMPLATE));
    expect(config).toEqual({ service: 'agent', memory: { path: 'memory/acme/u1', ttl: 60 }, tools: ['search', 'weather'] });
  });

  it('reads a .yaml file by path', async () => {
    const file = join(dir, 'agent.yaml');
    await writeFile(file, TEMPLATE);
    process.env.ISO_NAME = 'calendar';
    const config = await withRequestContext({ tenantId: 'acme', userId: 'u2' }, () => loadConfig(file));
    expect(config).toEqual({ service: 'agent', memory: { path: 'memory/acme/u2', ttl: 60 }, tools: ['search', 'calendar'] });
  });

  it('reads a .json file by path', async () => {
    const file = join(dir, 'agent.json');
    await writeFile(file, JSON.stringify({ owner: '${TENANT_ID}', n: 1 }));
    expect(await withRequestContext({ tenantId: 'acme', userId: 'u1' }, () => loadConfig(file))).toEqual({ owner: 'acme', n: 1 });
  });

  it('expands after parsing: a value keeps its type as text and is never re-parsed', async () => {
    process.env.ISO_PORT = '8080';
    const config = parseConfig<{ port: unknown; enabled: unknown }>('port: ${ISO_PORT}\nenabled: ${ISO_ENABLED:-true}\n');
    expect(config).toEqual({ port: '8080', enabled: 'true' });
  });

  it.each([
    ['a newline and a key', 'x\nadmin: true'],
    ['a flow mapping', '{admin: true}'],
    ['a document break', 'x\n---\nadmin: true'],
    ['a comment and an anchor', 'x # comment\n&a admin: *a'],
  ])('keeps an environment value containing %s a plain string that adds no key', async (_what, value) => {
    process.env.ISO_NAME = value;
    const config = parseConfig<Record<string, unknown>>('name: ${ISO_NAME}\nrole: user\n');
    expect(config).toEqual({ name: value, role: 'user' });
    expect(Object.keys(config)).toEqual(['name', 'role']);
  });

  it('keeps a request value that looks like YAML (or is an object) a plain string that adds no key', async () => {
    const config = await withRequestContext(
      { tenantId: 't1', userId: 'u1', values: { displayName: 'x\nadmin: true', profile: { admin: true } } },
      () => parseConfig<Record<string, unknown>>('name: ${displayName}\nprofile: ${profile}\nrole: user\n'),
    );
    expect(config).toEqual({ name: 'x\nadmin: true', profile: '{"admin":true}', role: 'user' });
    expect(config.admin).toBeUndefined();
  });

  it('keeps a tenant id that looks like YAML a plain string', async () => {
    const config = await withRequestContext({ tenantId: 'evil\nadmin: true', userId: 'u1' }, () => parseConfig<Record<string, unknown>>('tenant: ${TENANT_ID}\n'));
    expect(config).toEqual({ tenant: 'evil\nadmin: true' });
  });

  it('rejects invalid YAML, and a duplicate key, with ConfigError', () => {
    expect(() => parseConfig('service: [unclosed\n  tools: {\n')).toThrow(ConfigError);
    expect(() => parseConfig('service: [unclosed\n  tools: {\n')).toThrow(/not valid YAML/);
    expect(() => parseConfig('a: 1\nb: 2\na: 3\n')).toThrow(/duplicate key 'a'/);
  });

  it('rejects an invalid YAML file with ConfigError naming the file', async () => {
    const file = join(dir, 'broken.yml');
    await writeFile(file, 'a: [1, 2\n');
    await expect(loadConfig(file)).rejects.toThrow(ConfigError);
    await expect(loadConfig(file)).rejects.toThrow(file);
  });

  it('rejects a missing file with ConfigError naming it', async () => {
    const file = join(dir, 'does-not-exist.yaml');
    const outcome = loadConfig(file);
    await expect(outcome).rejects.toThrow(ConfigError);
    await expect(outcome).rejects.toThrow(file);
  });

  it('rejects an unresolved variable with UnresolvedVariableError', async () => {
    expect(() => parseConfig('name: ${ISO_NAME}\n')).toThrow(UnresolvedVariableError);
    const file = join(dir, 'unresolved.yaml');
    await writeFile(file, 'name: ${ISO_NAME}\n');
    await expect(loadConfig(file)).rejects.toThrow(UnresolvedVariableError);
  });

  it('rejects an argument of the wrong kind with a TypeError (loadConfig rejects, never throws)', async () => {
    expect(() => parseConfig(42 as unknown as string)).toThrow(TypeError);
    await expect(loadConfig(42 as unknown as string)).rejects.toThrow(TypeError);
    await expect(loadConfig(new URL('https://example.com/agent.yaml'))).rejects.toThrow(/file: URL/);
  });
});

describe('file or text: decided by the call, never guessed from the shape', () => {
  it('parseConfig never reads a file, even for one line ending in .json or .yaml', async () => {
    const file = join(dir, 'secret.json');
    await writeFile(file, JSON.stringify({ secret: 'from-disk' }));
    expect(parseConfig(file)).toBe(file);
    expect(parseConfig(`${file}\n`)).toBe(file);
    expect(parseConfig('extends: base.yaml')).toEqual({ extends: 'base.yaml' });
  });

  it('loadConfig always reads a file: a path or a file: URL', async () => {
    const file = join(dir, 'by-url.yaml');
    await writeFile(file, 'owner: ${ISO_NAME:-nobody}\n');
    expect(await loadConfig(pathToFileURL(file))).toEqual({ owner: 'nobody' });
    expect(await loadConfig(file)).toEqual({ owner: 'nobody' });
  });

  it('loadConfig given YAML text rejects with ConfigError pointing to parseConfig', async () => {
    const outcome = loadConfig('extends: base.yaml');
    await expect(outcome).rejects.toThrow(ConfigError);
    await expect(outcome).rejects.toThrow(/parseConfig\(text\)/);
  });
});

describe('parseConfig and loadConfig { env }', () => {
  it('env: false never reads the environment; a list allows only its names', async () => {
    process.env.ISO_SECRET = 'hunter2';
    process.env.ISO_NAME = 'agent';
    const template = 'name: ${ISO_NAME}\nnote: ${ISO_SECRET:-none}\n';
    expect(parseConfig(template)).toEqual({ name: 'agent', note: 'hunter2' });
    expect(parseConfig(template, { env: ['ISO_NAME'] })).toEqual({ name: 'agent', note: 'none' });
    expect(() => parseConfig(template, { env: false })).toThrow(UnresolvedVariableError);
    await withRequestContext({ tenantId: 't1', userId: 'u1', values: { ISO_NAME: 'from-request' } }, () => {
      expect(parseConfig(template, { env: false })).toEqual({ name: 'from-request', note: 'none' });
    });
    const file = join(dir, 'env.yaml');
    await writeFile(file, template);
    expect(await loadConfig(file, { env: ['ISO_NAME'] })).toEqual({ name: 'agent', note: 'none' });
    await expect(loadConfig(file, { env: false })).rejects.toThrow(UnresolvedVariableError);
  });

  it('rejects a bad env option with a TypeError naming env (before reading the file)', async () => {
    expect(() => parseConfig('a: 1', { env: 'no' as never })).toThrow(/env/);
    await expect(loadConfig(join(dir, 'missing.yaml'), { env: 1 as never })).rejects.toThrow(TypeError);
  });

  it('keeps ${__proto__}, ${constructor} and ${toString} unresolved, and an own __proto__ key plain data', () => {
    for (const name of ['__proto__', 'constructor', 'toString']) expect(() => parseConfig(`v: \${${name}}\n`)).toThrow(UnresolvedVariableError);
    const config = parseConfig<Record<string, unknown>>('__proto__:\n  admin: true\nname: x\n');
    expect(Object.getPrototypeOf(config)).toBe(Object.prototype);
    expect(Object.keys(config)).toEqual(['__proto__', 'name']);
    expect((config as { admin?: unknown }).admin).toBeUndefined();
  });
});

describe('hostile YAML gives ConfigError, never a RangeError or a hang', () => {
  const BILLION_LAUGHS = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]', ...'bcdefghi'.split('').map((name, i) => `${name}: &${name} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`)].join('\n');

  it.each([
    ['a sequence alias to itself', 'a: &a [*a]\n', /contains itself/],
    ['a mapping alias to itself', '&x\nself: *x\n', /contains itself/],
    ['an alias bomb (billion laughs)', BILLION_LAUGHS, /not valid YAML.*alias/],
    ['10,000 nested flow sequences', `k: ${'['.repeat(10_000)}${']'.repeat(10_000)}`, ConfigError],
    ['20,000 unclosed flow sequences', `k: ${'['.repeat(20_000)}`, ConfigError],
    ['2,000 nested flow sequences', `k: ${'['.repeat(2_000)}${']'.repeat(2_000)}`, ConfigError],
    ['5,000 nested block mappings', Array.from({ length: 5_000 }, (_, i) => `${' '.repeat(i)}k:`).join('\n') + ' 1\n', ConfigError],
    ['10,000 nested block sequences', `${'- '.repeat(10_000)}x\n`, ConfigError],
  ])('%s', async (_what, text, expected) => {
    let caught: unknown;
    try {
      parseConfig(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect(() => parseConfig(text)).toThrow(expected);
    const file = join(dir, 'hostile.yaml');
    await writeFile(file, text);
    await expect(loadConfig(file)).rejects.toThrow(ConfigError);
  });

  it('rejects text larger than 4 MiB with ConfigError', () => {
    expect(() => parseConfig(`k: "${'x'.repeat(4 * 1024 * 1024)}"`)).toThrow(/larger than/);
  });

  it('still parses deep but reasonable nesting (200 levels)', () => {
    const config = parseConfig<unknown>(`${'['.repeat(200)}1${']'.repeat(200)}`);
    let value = config;
    for (let i = 0; i < 200; i++) value = (value as unknown[])[0];
    expect(value).toBe(1);
  });
});
