// Two installed copies of isotrace in one process (a dependency's nested copy beside the app's):
// they share one runtime and one request context, as copies of @opentelemetry/api share their
// globals, so a request started by one copy is served by the other's request API, SharedState and
// tools without TracingNotStartedError; a copy of an incompatible version is refused loudly.
// The second copy is the built package copied to a temporary folder (its dependencies resolve to
// the same node_modules); each scenario runs in its own Node process.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNode } from '../helpers/process.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/two-copies/${name}`, import.meta.url));
const OWN_VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

let root: string;

/** A second copy of the built package, with its own package.json saying `version`. */
function copyOfPackage(folder: string, version: string): string {
  const dir = join(root, folder);
  mkdirSync(dir);
  cpSync(join(REPO, 'dist'), join(dir, 'dist'), { recursive: true });
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...pkg, version }));
  return dir;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'isotrace-copies-'));
  // The copies' own imports (@opentelemetry/*, piscina, …) resolve to the same installed packages.
  symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'), 'dir');
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

async function run(script: string, copy: string): Promise<Record<string, unknown>> {
  const { code, stdout, stderr } = await runNode([fixture(script), copy], { cwd: REPO });
  expect(code, stderr).toBe(0);
  return JSON.parse(stdout.trim()) as Record<string, unknown>;
}

describe('two copies of isotrace in one process', () => {
  it("copy B's request API, SharedState and tools serve the requests copy A started, concurrently and without crossing", async () => {
    const report = await run('share-request.ts', copyOfPackage('copy-b', OWN_VERSION));
    const served = report.served as Array<{ tenantId: string; seenByB: boolean; tool: { tenant: string; note: string } }>;
    expect(served).toHaveLength(12);
    for (const { tenantId, seenByB, tool } of served) {
      expect(seenByB).toBe(true);
      expect(tool).toEqual({ tenant: tenantId, note: `note-of-${tenantId}` });
    }
    // B's tool spans went through A's pipeline, each stamped with its own request and audited clean.
    const toolSpans = report.toolSpans as Array<{ tenant: string; audit: string }>;
    expect(toolSpans.map((span) => span.tenant).sort()).toEqual(served.map((s) => s.tenantId).sort());
    expect(toolSpans.every((span) => span.audit === 'pass')).toBe(true);
    expect(report.leakage).toBe('none');
    // One isotrace per process, whichever copy asks.
    expect(report.secondStart).toBe('TracingAlreadyStartedError');
    expect(report.underB).toBe('after');
  });

  it('a copy of an incompatible version is refused loudly, naming both versions, and the running copy keeps serving', async () => {
    const report = await run('version-mismatch.ts', copyOfPackage('copy-incompatible', '0.999.0'));
    for (const refusal of [report.getRequestContext, report.withRequestContext, report.startTracing, report.startAfterShutdown]) {
      expect(refusal).toMatch(/^IsotraceSetupError: Two incompatible copies of isotrace/);
      expect(refusal).toContain(`isotrace ${OWN_VERSION} is already in use`);
      expect(refusal).toContain('this copy is isotrace 0.999.0');
    }
    expect(report.stillA).toBe('t1');
  });
});
