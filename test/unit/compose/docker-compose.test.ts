/**
 * docker-compose.yml cannot be run here (no Docker engine), so it is linted
 * against what it references: the collector configs the e2e tests run, the
 * example services' main files, examples/Dockerfile and the Jaeger pin. Each
 * planted mistake below must be reported, so the lint itself can fail.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { diskRepo, isDockerIgnored, lintCompose, withFiles } from './compose-lint.ts';
import type { ComposeFile, ComposeService, Repo } from './compose-lint.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const repo = diskRepo(root);
const composeText = readFileSync(`${root}docker-compose.yml`, 'utf8');
const compose = parse(composeText) as ComposeFile;

function service(file: ComposeFile, name: string): ComposeService {
  const found = file.services?.[name];
  if (found === undefined) throw new Error(`docker-compose.yml has no service ${name}`);
  return found;
}

function env(target: ComposeService): Record<string, string> {
  return (target.environment ??= {}) as Record<string, string>;
}

/** A default port as a config or main states it, so this test never repeats a number. */
function defaultPort(path: string, pattern: RegExp): number {
  const match = pattern.exec(readFileSync(`${root}${path}`, 'utf8'));
  if (!match) throw new Error(`${pattern} not found in ${path}`);
  return Number(match[1]);
}

describe('docker-compose.yml', () => {
  it('lines up with the collector configs, the example mains, examples/Dockerfile and the Jaeger pin', () => {
    expect(lintCompose(compose, repo)).toEqual([]);
  });

  it('has the services the docs promise: jaeger, otel-collector, redis, agent-service, inventory-service', () => {
    expect(Object.keys(compose.services ?? {}).sort()).toEqual(['agent-service', 'inventory-service', 'jaeger', 'otel-collector', 'redis']);
    expect(service(compose, 'redis').image).toMatch(/^redis:/);
  });

  it('publishes the Jaeger UI and the agent on their default ports, as examples/README.md says', () => {
    const ui = defaultPort('collector-config/jaeger.yaml', /ISOTRACE_JAEGER_QUERY_HTTP_ENDPOINT:-0\.0\.0\.0:(\d+)/);
    const agent = defaultPort('examples/agent-service/main.ts', /portFromEnv\('PORT', (\d+)\)/);
    expect(service(compose, 'jaeger').ports).toContain(`${ui}:${ui}`);
    expect(service(compose, 'agent-service').ports).toContain(`${agent}:${agent}`);
    const readme = readFileSync(`${root}examples/README.md`, 'utf8');
    expect(readme).toContain(`http://localhost:${ui}`);
    expect(readme).toContain('test/unit/compose/docker-compose.test.ts');
  });
});

type Mutation = (file: ComposeFile) => void;

const PLANTED: { mistake: string; mutate?: Mutation; files?: Record<string, string | undefined>; expected: RegExp }[] = [
  {
    mistake: 'a mounted config that does not exist',
    mutate: (file) => void (service(file, 'jaeger').volumes = ['./collector-config/jaeger.yml:/etc/isotrace/jaeger.yaml:ro']),
    expected: /service jaeger: volume .* mounts collector-config\/jaeger\.yml, which does not exist/,
  },
  {
    mistake: 'a config mounted from outside collector-config/',
    mutate: (file) => void (service(file, 'jaeger').volumes = ['./docs/for-sres.md:/etc/isotrace/jaeger.yaml:ro']),
    expected: /service jaeger: --config .* mounts docs\/for-sres\.md, which is not one of collector-config/,
  },
  {
    mistake: '--config pointing at a path nothing is mounted on',
    mutate: (file) => void (service(file, 'otel-collector').command = ['--config', '/etc/otelcol/config.yaml']),
    expected: /service otel-collector: --config \/etc\/otelcol\/config\.yaml is not the target of any volume/,
  },
  {
    mistake: 'a published port nothing listens on',
    mutate: (file) => void (service(file, 'jaeger').ports = ['16687:16687']),
    expected: /service jaeger: publishes container port 16687, but nothing listens there/,
  },
  {
    mistake: 'a port published under another number',
    mutate: (file) => void (service(file, 'agent-service').ports = ['9090:8080']),
    expected: /service agent-service: publishes 8080 as 9090/,
  },
  {
    mistake: 'a PORT override without the published port following it',
    mutate: (file) => void (env(service(file, 'agent-service')).PORT = '9000'),
    expected: /service agent-service: publishes container port 8080, but nothing listens there \(it listens on 0\.0\.0\.0:9000\)/,
  },
  {
    mistake: 'a service left listening on 127.0.0.1 (its main\'s default HOST)',
    mutate: (file) => void delete env(service(file, 'inventory-service')).HOST,
    expected: /service agent-service: INVENTORY_URL of agent-service points at inventory-service:8081, but .* listens on 127\.0\.0\.1 only/,
  },
  {
    mistake: 'an environment variable the main never reads',
    mutate: (file) => void (env(service(file, 'agent-service')).CACHE_URL = 'redis://redis:6379'),
    expected: /service agent-service: sets CACHE_URL, which its config\/main never reads/,
  },
  {
    mistake: 'an environment variable the collector config never reads',
    mutate: (file) => void (env(service(file, 'otel-collector')).ISOTRACE_COLLECTOR_KEEP_ARGUMENTS = 'true'),
    expected: /service otel-collector: sets ISOTRACE_COLLECTOR_KEEP_ARGUMENTS, which its config\/main never reads/,
  },
  {
    mistake: 'environment on an image nothing here describes',
    mutate: (file) => void (env(service(file, 'redis')).REDIS_ARGS = '--save 60 1'),
    expected: /service redis: sets REDIS_ARGS, but nothing here says that its image reads it/,
  },
  {
    mistake: 'a service address with the wrong port',
    mutate: (file) => void (env(service(file, 'agent-service')).INVENTORY_URL = 'http://inventory-service:8080'),
    expected: /service agent-service: INVENTORY_URL of agent-service points at inventory-service:8080, but inventory-service listens on 0\.0\.0\.0:8081/,
  },
  {
    mistake: 'OTLP/HTTP sent to the collector\'s gRPC port',
    mutate: (file) => void (env(service(file, 'inventory-service')).OTEL_EXPORTER_OTLP_ENDPOINT = 'http://otel-collector:4317'),
    expected: /service inventory-service: OTEL_EXPORTER_OTLP_ENDPOINT of inventory-service speaks http to otel-collector:4317, which is grpc/,
  },
  {
    mistake: 'the collector exporting OTLP/gRPC to Jaeger\'s HTTP port',
    mutate: (file) => void (env(service(file, 'otel-collector')).ISOTRACE_COLLECTOR_EXPORT_ENDPOINT = 'jaeger:4318'),
    expected: /service otel-collector: exporters\.otlp\/jaeger\.endpoint in collector-config\/otel-collector\.yaml speaks grpc to jaeger:4318, which is http/,
  },
  {
    mistake: 'a keep-tool-arguments flag that is neither true nor false',
    mutate: (file) => void (env(service(file, 'otel-collector')).ISOTRACE_COLLECTOR_KEEP_TOOL_ARGUMENTS = '${ISOTRACE_COLLECTOR_KEEP_TOOL_ARGUMENTS:-yes}'),
    expected: /pipeline traces names processor "attributes\/keep_tool_arguments_yes", which is not defined/,
  },
  {
    mistake: 'a Jaeger image other than the pinned release',
    mutate: (file) => void (service(file, 'jaeger').image = 'jaegertracing/jaeger:2.12.0'),
    expected: /service jaeger: runs a collector config on image jaegertracing\/jaeger:2\.12\.0; use jaegertracing\/jaeger:2\.13\.0/,
  },
  {
    mistake: 'the contrib collector image, which lacks healthcheckv2',
    mutate: (file) => void (service(file, 'otel-collector').image = 'otel/opentelemetry-collector-contrib:0.140.1'),
    expected: /service otel-collector: runs a collector config on image otel\/opentelemetry-collector-contrib:0\.140\.1; use jaegertracing\/jaeger:2\.13\.0/,
  },
  {
    mistake: 'a new Jaeger pin in scripts/ensure-jaeger.sh without the image following it',
    files: { 'scripts/ensure-jaeger.sh': readFileSync(`${root}scripts/ensure-jaeger.sh`, 'utf8').replace(/^readonly JAEGER_RELEASE=.*$/m, 'readonly JAEGER_RELEASE=v2.14.0') },
    expected: /service jaeger: .*use jaegertracing\/jaeger:2\.14\.0/,
  },
  {
    mistake: 'a healthcheck on a port nothing listens on',
    mutate: (file) => void (service(file, 'jaeger').healthcheck = { test: ['CMD', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:13134/status'] }),
    expected: /service jaeger: healthcheck probes http:\/\/127\.0\.0\.1:13134\/status, but nothing listens on port 13134/,
  },
  {
    mistake: 'waiting for a service that has no healthcheck',
    mutate: (file) => void (service(file, 'agent-service').depends_on = { 'inventory-service': { condition: 'service_healthy' } }),
    expected: /service agent-service: waits for inventory-service to be healthy, but it has no healthcheck/,
  },
  {
    mistake: 'a collector config that no service runs',
    mutate: (file) => {
      delete file.services?.['otel-collector'];
      for (const name of ['agent-service', 'inventory-service']) env(service(file, name)).OTEL_EXPORTER_OTLP_ENDPOINT = 'http://jaeger:4318';
      for (const name of ['agent-service', 'inventory-service']) service(file, name).depends_on = ['jaeger'];
    },
    expected: /^collector-config\/otel-collector\.yaml is run by no service$/,
  },
  {
    mistake: 'a command that runs a file that does not exist',
    mutate: (file) => void (service(file, 'inventory-service').command = ['node', 'examples/inventory-service/main.js']),
    expected: /service inventory-service: command runs examples\/inventory-service\/main\.js, which does not exist/,
  },
  {
    mistake: 'a Dockerfile CMD that runs a file that does not exist',
    files: { 'examples/Dockerfile': readFileSync(`${root}examples/Dockerfile`, 'utf8').replace(/^CMD .*$/m, 'CMD ["node", "examples/agent/main.ts"]') },
    expected: /service agent-service: examples\/Dockerfile: CMD runs examples\/agent\/main\.ts, which does not exist/,
  },
  {
    mistake: 'a Dockerfile that does not copy the examples into the image',
    files: { 'examples/Dockerfile': readFileSync(`${root}examples/Dockerfile`, 'utf8').replace(/^COPY examples\/ examples\/$/m, '') },
    expected: /service agent-service: command runs examples\/agent-service\/main\.ts, which the final stage of the Dockerfile does not COPY/,
  },
  {
    mistake: 'a Dockerfile on another Node major',
    files: { 'examples/Dockerfile': readFileSync(`${root}examples/Dockerfile`, 'utf8').replaceAll('node:24-slim', 'node:22-slim') },
    expected: /examples\/Dockerfile: FROM node:22-slim; the examples run on the official Node 24 image/,
  },
  {
    mistake: 'a .dockerignore that drops the examples from the build context',
    files: { '.dockerignore': `${readFileSync(`${root}.dockerignore`, 'utf8')}\nexamples/\n` },
    expected: /examples\/Dockerfile: COPY examples\/ is excluded by \.dockerignore/,
  },
  {
    mistake: 'a missing Dockerfile',
    files: { 'examples/Dockerfile': undefined },
    expected: /service agent-service: build\.dockerfile examples\/Dockerfile does not exist/,
  },
  {
    mistake: 'a main whose port and host this lint can no longer read',
    files: { 'examples/agent-service/main.ts': 'console.log(process.env.INVENTORY_URL, process.env.OTEL_EXPORTER_OTLP_ENDPOINT);\n' },
    expected: /service agent-service: cannot find how examples\/agent-service\/main\.ts picks its port/,
  },
];

describe('the compose lint catches each planted mistake', () => {
  it.each(PLANTED)('$mistake', ({ mutate, files, expected }) => {
    const planted = structuredClone(compose);
    mutate?.(planted);
    const lintedRepo: Repo = files ? withFiles(repo, files) : repo;

    const problems = lintCompose(planted, lintedRepo);

    expect(problems.some((problem) => expected.test(problem)), `expected a problem matching ${expected}; got:\n${problems.join('\n')}`).toBe(true);
  });

  it('reads .dockerignore like Docker: globs from the context root, a match covers what is below it, "!" re-includes', () => {
    const ignore = 'node_modules/\n**/*.cpuprofile\ndocs\n!docs/keep.md\n';
    expect(isDockerIgnored('node_modules/yaml/index.js', ignore)).toBe(true);
    expect(isDockerIgnored('examples/agent-service/cpu.cpuprofile', ignore)).toBe(true);
    expect(isDockerIgnored('docs/for-sres.md', ignore)).toBe(true);
    expect(isDockerIgnored('docs/keep.md', ignore)).toBe(false);
    expect(isDockerIgnored('examples/node_modules.md', ignore)).toBe(false);
  });
});
