/**
 * The tests run isotrace from sdk/src/, never from a stale dist/: every exports
 * entry of package.json has an `isotrace-source` condition naming its source
 * file, vitest resolves with it, and so do the Node processes and worker
 * threads the tests start (test/helpers/source-mode.ts). An entry added without
 * the condition fails here instead of silently testing the last build.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createWorkerPool } from 'isotrace/workers';
import { runNode } from '../../helpers/process.ts';
import { SOURCE_CONDITION } from '../../helpers/source-mode.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
const FIXTURE = fileURLToPath(new URL('../../fixtures/source-mode/where-isotrace-loads.ts', import.meta.url));

interface Entry {
  readonly key: string;
  readonly specifier: string;
  readonly conditions: Record<string, unknown>;
}

const entries: Entry[] = Object.entries(manifest.exports)
  .filter(([key]) => key !== './package.json')
  .map(([key, target]) => ({
    key,
    specifier: key === '.' ? 'isotrace' : `isotrace/${key.slice(2)}`,
    conditions: target !== null && typeof target === 'object' ? (target as Record<string, unknown>) : {},
  }));

/** The source file an entry's condition names, as an absolute path (undefined when it names none). */
function sourceOf(entry: Entry): string | undefined {
  const target = entry.conditions[SOURCE_CONDITION];
  return typeof target === 'string' ? join(root, target) : undefined;
}

const sourced = entries.filter((entry) => sourceOf(entry) !== undefined && existsSync(sourceOf(entry)!));

describe('tests run isotrace from sdk/src', () => {
  it('every exports entry has the source condition first, naming an existing sdk/src/<entry>/index.ts', () => {
    expect(entries.length).toBeGreaterThanOrEqual(10);
    const problems: string[] = [];
    for (const entry of entries) {
      const expected = `./sdk/src/${entry.key === '.' ? '' : `${entry.key.slice(2)}/`}index.ts`;
      const target = entry.conditions[SOURCE_CONDITION];
      if (Object.keys(entry.conditions)[0] !== SOURCE_CONDITION) problems.push(`${entry.key}: '${SOURCE_CONDITION}' is not its first condition`);
      if (target !== expected) problems.push(`${entry.key}: '${SOURCE_CONDITION}' is ${JSON.stringify(target)}, expected ${expected}`);
      else if (!existsSync(join(root, expected))) problems.push(`${entry.key}: ${expected} does not exist`);
    }
    expect(problems).toEqual([]);
  });

  it('in vitest, each entry point is the very module of its source file', async () => {
    expect(sourced.length).toBeGreaterThanOrEqual(10);
    for (const entry of sourced) {
      const viaPackage = (await import(/* @vite-ignore */ entry.specifier)) as Record<string, unknown>;
      const source = (await import(/* @vite-ignore */ sourceOf(entry)!)) as Record<string, unknown>;
      expect(Object.keys(viaPackage).sort(), entry.specifier).toEqual(Object.keys(source).sort());
      // Identity, not equality: a second copy (say, from dist/) has functions of its own.
      const objects = Object.keys(source).filter((name) => typeof source[name] === 'function' || (typeof source[name] === 'object' && source[name] !== null));
      expect(objects.length, `${entry.specifier} exports a function or object to compare`).toBeGreaterThan(0);
      for (const name of objects) expect(viaPackage[name] === source[name], `${entry.specifier} ${name}`).toBe(true);
    }
  });

  it('a child process the tests start loads every entry point from its source file', async () => {
    const run = await runNode([FIXTURE, ...sourced.map((entry) => entry.specifier)], { cwd: root });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout) as string[]).toEqual(sourced.map((entry) => pathToFileURL(sourceOf(entry)!).href));
  });

  describe('in a worker thread', () => {
    const pool = createWorkerPool({ filename: FIXTURE, maxThreads: 1, minThreads: 0 });
    afterAll(() => pool.close());

    it('a worker task loads every entry point from its source file', async () => {
      const urls = await pool.run<string[]>(sourced.map((entry) => entry.specifier));
      expect(urls).toEqual(sourced.map((entry) => pathToFileURL(sourceOf(entry)!).href));
    });
  });
});
