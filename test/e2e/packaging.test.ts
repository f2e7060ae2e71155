/**
 * What a consumer installs: the tarball `npm pack` would publish. Its source
 * maps must point at files it ships, its README's links must resolve (npm's
 * page resolves relative links against `repository`), and it states its
 * licence and the Node version it needs. Needs `dist/` (npm test builds first).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  license: string;
  repository?: { url?: string };
  engines: { node: string };
};

let packed: Set<string>;

beforeAll(() => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  const [pack] = JSON.parse(out) as [{ files: { path: string }[] }];
  packed = new Set(pack.files.map((file) => file.path));
});

describe('the published package', () => {
  it('ships its licence text and names its repository', () => {
    expect(packed.has('LICENSE')).toBe(true);
    expect(manifest.license).toBe('Apache-2.0');
    expect(readFileSync(join(root, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0/);
    expect(manifest.repository?.url).toMatch(/^git\+https:\/\/.+\.git$/);
  });

  it('has source maps whose sources are files it ships', () => {
    const maps = [...packed].filter((path) => path.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(10);
    const missing: string[] = [];
    for (const map of maps) {
      const { sources, sourceRoot = '' } = JSON.parse(readFileSync(join(root, map), 'utf8')) as { sources: string[]; sourceRoot?: string };
      for (const source of sources) {
        const target = normalize(join(dirname(map), sourceRoot, source));
        if (!packed.has(target)) missing.push(`${map} -> ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('README links resolve: docs are shipped, every other relative link exists in the repository', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1]!).filter((link) => !/^[a-z]+:|^#/.test(link));
    expect(links.length).toBeGreaterThan(3);
    for (const link of links) {
      const path = relative(root, join(root, link.split('#')[0]!));
      expect(existsSync(join(root, path)), `README links to ${link}`).toBe(true);
      if (path.startsWith('docs/')) expect(packed.has(path), `${path} is shipped`).toBe(true);
    }
  });

  it("README states the Node version a consumer needs, as package.json's engines does", () => {
    const version = /^>=(\d+\.\d+)$/.exec(manifest.engines.node)?.[1];
    expect(version).toBeDefined();
    expect(readFileSync(join(root, 'README.md'), 'utf8')).toContain(`Node.js ${version}`);
  });
});
