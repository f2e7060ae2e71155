import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, UnresolvedVariableError, withRequestContext } from 'isotrace';
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

const ENV_NAMES = ['ISO_NAME', 'ISO_PORT', 'ISO_ENABLED'];

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

describe('loadConfig', () => {
  it('parses YAML text and expands variables from the request', async () => {
    const config = await withRequestContext({ tenantId: 'acme', userId: 'u1' }, () => loadConfig(TEMPLATE));
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
    const config = await loadConfig<{ port: unknown; enabled: unknown }>('port: ${ISO_PORT}\nenabled: ${ISO_ENABLED:-true}\n');
    expect(config).toEqual({ port: '8080', enabled: 'true' });
  });

  it.each([
    ['a newline and a key', 'x\nadmin: true'],
    ['a flow mapping', '{admin: true}'],
    ['a document break', 'x\n---\nadmin: true'],
    ['a comment and an anchor', 'x # comment\n&a admin: *a'],
  ])('keeps an environment value containing %s a plain string that adds no key', async (_what, value) => {
    process.env.ISO_NAME = value;
    const config = await loadConfig<Record<string, unknown>>('name: ${ISO_NAME}\nrole: user\n');
    expect(config).toEqual({ name: value, role: 'user' });
    expect(Object.keys(config)).toEqual(['name', 'role']);
  });

  it('keeps a request value that looks like YAML (or is an object) a plain string that adds no key', async () => {
    const config = await withRequestContext(
      { tenantId: 't1', userId: 'u1', values: { displayName: 'x\nadmin: true', profile: { admin: true } } },
      () => loadConfig<Record<string, unknown>>('name: ${displayName}\nprofile: ${profile}\nrole: user\n'),
    );
    expect(config).toEqual({ name: 'x\nadmin: true', profile: '{"admin":true}', role: 'user' });
    expect(config.admin).toBeUndefined();
  });

  it('keeps a tenant id that looks like YAML a plain string', async () => {
    const config = await withRequestContext({ tenantId: 'evil\nadmin: true', userId: 'u1' }, () => loadConfig<Record<string, unknown>>('tenant: ${TENANT_ID}\n'));
    expect(config).toEqual({ tenant: 'evil\nadmin: true' });
  });

  it('rejects invalid YAML with ConfigError', async () => {
    const outcome = loadConfig('service: [unclosed\n  tools: {\n');
    await expect(outcome).rejects.toThrow(ConfigError);
    await expect(outcome).rejects.toThrow(/not valid YAML/);
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
    await expect(loadConfig('name: ${ISO_NAME}\n')).rejects.toThrow(UnresolvedVariableError);
  });

  it('rejects a non-string argument with a TypeError', async () => {
    await expect(loadConfig(42 as unknown as string)).rejects.toThrow(TypeError);
  });
});

describe('loadConfig path or text', () => {
  it('reads a one-line YAML mapping whose value ends in .yaml as text, not as a path', async () => {
    expect(await loadConfig('extends: base.yaml')).toEqual({ extends: 'base.yaml' });
  });
});
