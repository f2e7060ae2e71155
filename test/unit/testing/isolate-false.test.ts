// vitest `isolate: false` runs test files one after another in one process: each file's test kit
// must start cleanly, also after a file that never shut its kit down. Runs the real vitest on
// test/fixtures/isolate-false/ in a child process.
import { describe, it, expect } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNode } from '../../helpers/process.ts';

const VITEST = fileURLToPath(new URL('../../../node_modules/vitest/vitest.mjs', import.meta.url));
const CONFIG = fileURLToPath(new URL('../../fixtures/isolate-false/vitest.config.ts', import.meta.url));

interface JsonReport {
  numTotalTestSuites: number;
  numPassedTests: number;
  numFailedTests: number;
  testResults: Array<{ name: string; status: string; message: string }>;
}

/** The environment without this run's own VITEST_* variables, so the child is a vitest run of its own. */
function freshEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST')));
}

describe('the test kit under vitest isolate: false', () => {
  it('restarts cleanly in each of three files sharing a process, two of which never shut down', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'isotrace-isolate-false-'));
    const outputFile = join(dir, 'report.json');
    const run = await runNode([VITEST, 'run', '--config', CONFIG, '--reporter=json', `--outputFile=${outputFile}`], { env: freshEnv() });
    const report = JSON.parse(await readFile(outputFile, 'utf8')) as JsonReport;
    await rm(dir, { recursive: true, force: true });
    const files = report.testResults.map((file) => `${file.name.split('/').pop()}: ${file.status} ${file.message}`.trim());
    expect(files.sort(), run.stderr).toEqual(['forgets-shutdown-a.kit.ts: passed', 'forgets-shutdown-b.kit.ts: passed', 'use-test-tracing.kit.ts: passed']);
    expect(report).toMatchObject({ numPassedTests: 4, numFailedTests: 0 });
    expect(run.code).toBe(0);
  });
});
