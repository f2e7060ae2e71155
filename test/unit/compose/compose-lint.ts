/**
 * A linter for docker-compose.yml, for a machine without a Docker engine: it
 * reads the compose file, the collector configs it mounts, the examples' main
 * files it runs and examples/Dockerfile, and reports every reference that does
 * not line up. Nothing here knows a port or a variable name: they are read
 * from the configs (`${env:NAME:-default}`), the mains (`portFromEnv('PORT',
 * 8080)`, `process.env.HOST ?? '127.0.0.1'`) and scripts/ensure-jaeger.sh.
 *
 * Service kinds:
 * - collector: the Jaeger v2 image running `--config <a mounted collector-config/*.yaml>`;
 * - node: built from a Dockerfile, running `node <examples/…/main.ts>`;
 * - image: anything else (redis); it may not publish ports or get environment
 *   variables, since there is no source here to check them against.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import ts from 'typescript';
import { parse } from 'yaml';

/** The repository as the linter sees it; tests swap single files to plant mistakes. */
export interface Repo {
  /** File contents by repository-relative path, or undefined when there is no such file. */
  readText(path: string): string | undefined;
  /** True for an existing file or directory. */
  exists(path: string): boolean;
  /** Names in a directory (empty when there is none). */
  list(dir: string): string[];
}

/** The repository on disk under `root`. */
export function diskRepo(root: string): Repo {
  const abs = (path: string): string => posix.join(root, path);
  return {
    readText: (path) => (existsSync(abs(path)) && statSync(abs(path)).isFile() ? readFileSync(abs(path), 'utf8') : undefined),
    exists: (path) => existsSync(abs(path)),
    list: (dir) => (existsSync(abs(dir)) ? readdirSync(abs(dir)) : []),
  };
}

/** `repo` with some files replaced (a string) or removed (undefined). */
export function withFiles(repo: Repo, files: Record<string, string | undefined>): Repo {
  const has = (path: string): boolean => Object.hasOwn(files, path);
  return {
    readText: (path) => (has(path) ? files[path] : repo.readText(path)),
    exists: (path) => (has(path) ? files[path] !== undefined : repo.exists(path)),
    list: (dir) => repo.list(dir),
  };
}

type Environment = Record<string, string | number | boolean | null> | string[];
type Volume = string | { type?: string; source?: string; target?: string };
type Port = string | number | { target?: number; published?: number | string };

/** The parts of a compose service the linter reads. */
export interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Environment;
  volumes?: Volume[];
  ports?: Port[];
  healthcheck?: { test?: string | string[] };
  depends_on?: string[] | Record<string, { condition?: string }>;
}

/** A parsed docker-compose.yml. */
export interface ComposeFile {
  services?: Record<string, ComposeService>;
}

/** An address a service listens on, and what it speaks there. */
interface Listener {
  host: string;
  port: number;
  protocol: 'http' | 'grpc';
  /** Where it comes from, for messages: `receivers.otlp.protocols.grpc.endpoint in collector-config/jaeger.yaml`. */
  origin: string;
}

/** An address one service uses to reach another. */
interface Reference {
  host: string;
  port: number;
  protocol?: 'http' | 'grpc';
  origin: string;
}

/** What the linter learned about one service. */
interface ServiceModel {
  name: string;
  listeners: Listener[];
  /** Environment variables its config or code reads; undefined when unknown (plain images). */
  reads?: Set<string>;
  references: Reference[];
}

const CONFIG_DIR = 'collector-config';
const JAEGER_IMAGE = 'jaegertracing/jaeger';
const ENSURE_JAEGER = 'scripts/ensure-jaeger.sh';
const ALL_INTERFACES = new Set(['0.0.0.0', '::', '[::]', '']);
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Every problem found in `compose` against `repo`, as readable sentences; empty when all lines up. */
export function lintCompose(compose: ComposeFile, repo: Repo): string[] {
  const problems: string[] = [];
  const services = compose.services ?? {};
  if (Object.keys(services).length === 0) return ['docker-compose.yml defines no services'];

  const models = new Map<string, ServiceModel>();
  const usedConfigs = new Set<string>();
  for (const [name, service] of Object.entries(services)) {
    const report = (message: string): void => void problems.push(`service ${name}: ${message}`);
    checkMounts(service, repo, report);
    const model = isCollector(service)
      ? collectorModel(name, service, repo, report, usedConfigs)
      : service.build !== undefined
        ? nodeModel(name, service, repo, report)
        : { name, listeners: [], references: [] };
    model.references.push(...referencesInEnvironment(service, name));
    models.set(name, model);
    checkEnvironment(service, model, report);
  }
  for (const [name, service] of Object.entries(services)) {
    const report = (message: string): void => void problems.push(`service ${name}: ${message}`);
    const model = models.get(name)!;
    checkPorts(service, model, report);
    checkHealthcheck(service, model, report);
    checkDependsOn(service, services, report);
    for (const reference of model.references) checkReference(reference, models, report);
  }
  for (const config of repo.list(CONFIG_DIR).filter((file) => /\.ya?ml$/.test(file))) {
    if (!usedConfigs.has(`${CONFIG_DIR}/${config}`)) problems.push(`${CONFIG_DIR}/${config} is run by no service`);
  }
  return problems;
}

// ---- collector services (the Jaeger image running a collector-config/*.yaml) ----

function isCollector(service: ComposeService): boolean {
  return service.image?.split(':')[0] === JAEGER_IMAGE || mountSources(service).some((source) => source.startsWith(`${CONFIG_DIR}/`));
}

function collectorModel(name: string, service: ComposeService, repo: Repo, report: (m: string) => void, usedConfigs: Set<string>): ServiceModel {
  const model: ServiceModel = { name, listeners: [], reads: new Set(), references: [] };
  checkJaegerImage(service.image, repo, report);

  const args = commandArgs(service.command);
  const configTarget = args[args.indexOf('--config') + 1];
  if (!args.includes('--config') || configTarget === undefined) {
    report('runs no --config file; it must run one of collector-config/*.yaml');
    return model;
  }
  const configFile = mounts(service).find((mount) => mount.target === configTarget)?.source;
  if (configFile === undefined) {
    report(`--config ${configTarget} is not the target of any volume; mount a collector-config/*.yaml there`);
    return model;
  }
  if (posix.dirname(configFile) !== CONFIG_DIR) {
    report(`--config ${configTarget} mounts ${configFile}, which is not one of ${CONFIG_DIR}/* (the configs the e2e tests run)`);
    return model;
  }
  usedConfigs.add(configFile);
  const text = repo.readText(configFile);
  if (text === undefined) return model; // checkMounts has said so
  model.reads = new Set([...text.matchAll(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)/g)].map((match) => match[1]!));

  const env = environmentOf(service);
  const config = parse(substituteConfigEnv(text, env)) as CollectorConfig;
  checkPipelines(config, configFile, report);
  walkEndpoints(config.receivers, 'receivers', (path, endpoint) => {
    const address = parseHostPort(endpoint);
    if (address) model.listeners.push({ ...address, protocol: path.includes('.grpc.') ? 'grpc' : 'http', origin: `${path} in ${configFile}` });
    else report(`${path} in ${configFile} resolves to "${endpoint}", which is not host:port`);
  });
  walkEndpoints(config.extensions, 'extensions', (path, endpoint) => {
    const address = parseHostPort(endpoint);
    if (address) model.listeners.push({ ...address, protocol: path.includes('.grpc') ? 'grpc' : 'http', origin: `${path} in ${configFile}` });
  });
  for (const [id, exporter] of Object.entries(config.exporters ?? {})) {
    const endpoint = (exporter as { endpoint?: unknown } | null)?.endpoint;
    if (typeof endpoint !== 'string') continue;
    const address = parseHostPort(endpoint.replace(/^[a-z]+:\/\//, ''));
    const type = id.split('/')[0];
    // A pull exporter listens (Prometheus scrapes it); the others point at another service.
    if (type === 'prometheus') {
      if (address) model.listeners.push({ ...address, protocol: 'http', origin: `exporters.${id}.endpoint in ${configFile}` });
      continue;
    }
    const protocol = type === 'otlp' ? 'grpc' : type === 'otlphttp' ? 'http' : undefined;
    if (address) model.references.push({ ...address, protocol, origin: `exporters.${id}.endpoint in ${configFile}` });
  }
  return model;
}

interface CollectorConfig {
  receivers?: Record<string, unknown>;
  processors?: Record<string, unknown>;
  exporters?: Record<string, unknown>;
  extensions?: Record<string, unknown>;
  connectors?: Record<string, unknown>;
  service?: {
    extensions?: string[];
    pipelines?: Record<string, { receivers?: string[]; processors?: string[]; exporters?: string[] }>;
  };
}

/** The image must be Jaeger at the release scripts/ensure-jaeger.sh builds, the binary the e2e tests run the configs with. */
function checkJaegerImage(image: string | undefined, repo: Repo, report: (m: string) => void): void {
  const script = repo.readText(ENSURE_JAEGER) ?? '';
  const release = /^readonly JAEGER_RELEASE=v?(\d+\.\d+\.\d+)\s*$/m.exec(script)?.[1];
  if (release === undefined) {
    report(`cannot read the pinned Jaeger release (readonly JAEGER_RELEASE=vX.Y.Z) from ${ENSURE_JAEGER}`);
    return;
  }
  const expected = `${JAEGER_IMAGE}:${release}`;
  if (image !== expected) {
    report(
      `runs a collector config on image ${String(image)}; use ${expected}: the Jaeger release ${ENSURE_JAEGER} pins, ` +
        'whose binary the e2e tests run these configs with (the contrib collector image lacks components they use, e.g. healthcheckv2)',
    );
  }
}

/** The collector's `${env:NAME:-default}` substitution, with the variables compose sets (compose defaults applied). */
function substituteConfigEnv(text: string, env: Map<string, string>): string {
  return text.replace(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_, name: string, fallback: string | undefined) => env.get(name) ?? fallback ?? '');
}

/** Every component the service section names must be defined, after substitution (e.g. the keep-tool-arguments flag). */
function checkPipelines(config: CollectorConfig, configFile: string, report: (m: string) => void): void {
  const defined = (section: keyof Omit<CollectorConfig, 'service'>, id: string): boolean =>
    Object.hasOwn(config[section] ?? {}, id) || (section !== 'connectors' && Object.hasOwn(config.connectors ?? {}, id));
  for (const id of config.service?.extensions ?? []) {
    if (!defined('extensions', id)) report(`${configFile}: service.extensions names "${id}", which is not defined`);
  }
  for (const [pipeline, parts] of Object.entries(config.service?.pipelines ?? {})) {
    for (const section of ['receivers', 'processors', 'exporters'] as const) {
      for (const id of parts[section] ?? []) {
        if (!defined(section, id)) report(`${configFile}: pipeline ${pipeline} names ${section.slice(0, -1)} "${id}", which is not defined`);
      }
    }
  }
}

/** Calls `visit` for every string `endpoint` below `node`, with its dotted path. */
function walkEndpoints(node: unknown, path: string, visit: (path: string, endpoint: string) => void): void {
  if (typeof node !== 'object' || node === null) return;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'endpoint' && typeof value === 'string') visit(`${path}.${key}`, value);
    else walkEndpoints(value, `${path}.${key}`, visit);
  }
}

// ---- node services (examples/Dockerfile running an example's main.ts) ----

function nodeModel(name: string, service: ComposeService, repo: Repo, report: (m: string) => void): ServiceModel {
  const model: ServiceModel = { name, listeners: [], reads: new Set(), references: [] };
  const build = typeof service.build === 'string' ? { context: service.build } : (service.build ?? {});
  const context = posix.normalize(build.context ?? '.');
  const dockerfilePath = posix.join(context, build.dockerfile ?? 'Dockerfile');
  const dockerfile = repo.readText(dockerfilePath);
  if (dockerfile === undefined) {
    report(`build.dockerfile ${dockerfilePath} does not exist`);
    return model;
  }
  const image = parseDockerfile(dockerfile);
  const dockerignore = repo.readText(posix.join(context, '.dockerignore')) ?? '';
  const inContext = (path: string): string => posix.join(context, path);
  checkDockerfile(image, dockerfilePath, dockerignore, repo, inContext, report);

  const args = service.command === undefined ? image.cmd : commandArgs(service.command);
  const from = service.command === undefined ? `the CMD of ${dockerfilePath}` : 'command';
  const mainFile = args.find((arg) => /\.[cm]?[jt]s$/.test(arg));
  if (args[0] !== 'node' || mainFile === undefined) {
    report(`${from} is ${JSON.stringify(args)}; expected ["node", "examples/<service>/main.ts"]`);
    return model;
  }
  checkShippedFile(mainFile, `${from} runs`, image, dockerignore, repo, inContext, report);
  const main = repo.readText(inContext(mainFile));
  if (main === undefined) return model;

  const sources = importClosure(inContext(mainFile), repo);
  model.reads = envNamesRead(sources.map(({ code }) => code));
  const env = environmentOf(service);
  const mainCode = sources[0]!.code;
  const port = /portFromEnv\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*,\s*(\d+)\s*\)/.exec(mainCode);
  const host = /process\.env\.HOST\s*\?\?\s*['"]([^'"]*)['"]/.exec(mainCode);
  if (!port || !host) {
    report(`cannot find how ${mainFile} picks its port (portFromEnv('PORT', <default>)) and host (process.env.HOST ?? '<default>'); update test/unit/compose/compose-lint.ts`);
    return model;
  }
  const portValue = Number(env.get(port[1]!) ?? port[2]);
  model.listeners.push({ host: env.get('HOST') ?? host[1]!, port: portValue, protocol: 'http', origin: `${port[1]}/HOST in ${mainFile}` });
  return model;
}

interface DockerfileModel {
  /** FROM images of every stage, and the stage names. */
  stages: { image: string; name?: string }[];
  /** COPY/ADD sources taken from the build context, with their absolute destination, per stage index. */
  copies: { stage: number; sources: string[]; destination: string }[];
  /** The final stage's WORKDIR, against which CMD's relative paths resolve. */
  workdir: string;
  cmd: string[];
}

function parseDockerfile(text: string): DockerfileModel {
  const model: DockerfileModel = { stages: [], copies: [], workdir: '/', cmd: [] };
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((line) => line.trim());
  for (const line of lines) {
    if (line === '' || line.startsWith('#')) continue;
    const [instruction = '', ...rest] = line.split(/\s+/);
    const words = rest.filter((word) => !word.startsWith('--'));
    switch (instruction.toUpperCase()) {
      case 'FROM':
        model.stages.push({ image: rest[0] ?? '', name: rest[1]?.toUpperCase() === 'AS' ? rest[2] : undefined });
        model.workdir = '/';
        break;
      case 'WORKDIR':
        model.workdir = posix.resolve(model.workdir, rest[0] ?? '/');
        break;
      case 'COPY':
      case 'ADD':
        if (rest.some((word) => word.startsWith('--from='))) break;
        if (words.length >= 2) {
          const target = words.at(-1)!;
          const destination = posix.resolve(model.workdir, target) + (target.endsWith('/') ? '/' : '');
          model.copies.push({ stage: model.stages.length - 1, sources: words.slice(0, -1), destination });
        }
        break;
      case 'CMD':
        model.cmd = execForm(line.slice(instruction.length).trim());
        break;
    }
  }
  return model;
}

function execForm(text: string): string[] {
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed.map(String) : [];
  } catch {
    return text.split(/\s+/);
  }
}

function checkDockerfile(
  image: DockerfileModel,
  path: string,
  dockerignore: string,
  repo: Repo,
  inContext: (path: string) => string,
  report: (m: string) => void,
): void {
  const stageNames = new Set(image.stages.map((stage) => stage.name).filter((name) => name !== undefined));
  for (const stage of image.stages) {
    if (!/^node:24(?:[.-]|$)/.test(stage.image) && !stageNames.has(stage.image)) {
      report(`${path}: FROM ${stage.image}; the examples run on the official Node 24 image (node:24…)`);
    }
  }
  if (image.stages.length === 0) report(`${path} has no FROM`);
  for (const copy of image.copies) {
    for (const source of copy.sources) {
      const normalized = posix.normalize(source);
      if (!repo.exists(inContext(normalized))) report(`${path}: COPY ${source} does not exist in the build context`);
      else if (isDockerIgnored(normalized, dockerignore)) report(`${path}: COPY ${source} is excluded by .dockerignore`);
    }
  }
  if (image.cmd.length > 0) {
    const file = image.cmd.find((arg) => /\.[cm]?[jt]s$/.test(arg));
    if (file !== undefined) checkShippedFile(file, `${path}: CMD runs`, image, dockerignore, repo, inContext, report);
  }
}

/** `file` (relative to the final WORKDIR) exists, is not ignored, and the final stage copies it from the context to that path. */
function checkShippedFile(
  file: string,
  what: string,
  image: DockerfileModel,
  dockerignore: string,
  repo: Repo,
  inContext: (path: string) => string,
  report: (m: string) => void,
): void {
  const path = posix.normalize(file);
  if (!repo.exists(inContext(path))) {
    report(`${what} ${file}, which does not exist`);
    return;
  }
  if (isDockerIgnored(path, dockerignore)) report(`${what} ${file}, which .dockerignore excludes from the build context`);
  const finalStage = image.stages.length - 1;
  const wanted = posix.resolve(image.workdir, path);
  const shipped = image.copies.some(
    ({ stage, sources, destination }) => stage === finalStage && sources.some((source) => shippedPath(path, source, destination) === wanted),
  );
  if (!shipped) report(`${what} ${file}, which the final stage of the Dockerfile does not COPY to ${wanted}`);
}

/** Where `COPY source destination` puts the context file `path`, or undefined when it does not copy it. */
function shippedPath(path: string, source: string, destination: string): string | undefined {
  const from = posix.normalize(source).replace(/\/$/, '');
  if (from === '.') return posix.join(destination, path);
  if (path.startsWith(`${from}/`)) return posix.join(destination, path.slice(from.length + 1));
  if (path !== from) return undefined;
  return destination.endsWith('/') ? posix.join(destination, posix.basename(path)) : destination;
}

/** .dockerignore semantics: globs (`*`, `**`, `?`) relative to the context root, a match excludes everything below it, `!` re-includes, last match wins. */
export function isDockerIgnored(path: string, dockerignore: string): boolean {
  let ignored = false;
  for (const raw of dockerignore.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    const pattern = posix.normalize((negated ? line.slice(1) : line).replace(/^\//, '')).replace(/\/$/, '');
    if (globToRegExp(pattern).test(path)) ignored = !negated;
  }
  return ignored;
}

function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]!;
    if (pattern.startsWith('**/', i)) {
      source += '(?:.*/)?';
      i += 2;
    } else if (pattern.startsWith('**', i)) {
      source += '.*';
      i += 1;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}(?:/.*)?$`);
}

/** The main file and every local module it reaches (imports and worker `new URL('./x.ts', import.meta.url)`), comments stripped; main first. */
function importClosure(mainPath: string, repo: Repo): { path: string; code: string }[] {
  const seen = new Map<string, string>();
  const pending = [mainPath];
  while (pending.length > 0) {
    const path = pending.shift()!;
    if (seen.has(path)) continue;
    const text = repo.readText(path);
    if (text === undefined) continue;
    const code = stripComments(path, text);
    seen.set(path, code);
    const specifiers = [
      ...code.matchAll(/\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]/g),
      ...code.matchAll(/\bimport\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g),
      ...code.matchAll(/new URL\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g),
    ].map((match) => match[1]!);
    for (const specifier of specifiers) pending.push(posix.join(posix.dirname(path), specifier));
  }
  return [...seen].map(([path, code]) => ({ path, code }));
}

function stripComments(path: string, text: string): string {
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  return ts.createPrinter({ removeComments: true }).printFile(source);
}

/** Names read as `process.env.NAME`, `process.env['NAME']`, or passed as a string literal (e.g. portFromEnv('PORT', …)). */
function envNamesRead(codes: string[]): Set<string> {
  const names = new Set<string>();
  for (const code of codes) {
    for (const match of code.matchAll(/process\.env\.([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(match[1]!);
    for (const match of code.matchAll(/['"]([A-Z][A-Z0-9_]*)['"]/g)) names.add(match[1]!);
  }
  return names;
}

// ---- checks shared by every kind ----

function checkMounts(service: ComposeService, repo: Repo, report: (m: string) => void): void {
  for (const { source, raw } of mounts(service)) {
    if (source === undefined) continue;
    if (source.startsWith('..') || posix.isAbsolute(source)) report(`volume ${raw} mounts ${source}, outside the repository`);
    else if (!repo.exists(source)) report(`volume ${raw} mounts ${source}, which does not exist`);
  }
}

function checkEnvironment(service: ComposeService, model: ServiceModel, report: (m: string) => void): void {
  for (const name of environmentOf(service).keys()) {
    if (model.reads === undefined) report(`sets ${name}, but nothing here says that its image reads it`);
    else if (!model.reads.has(name)) report(`sets ${name}, which its config/main never reads`);
  }
}

function checkPorts(service: ComposeService, model: ServiceModel, report: (m: string) => void): void {
  for (const entry of service.ports ?? []) {
    const mapping = parsePort(entry);
    if (mapping === undefined) {
      report(`cannot read port ${JSON.stringify(entry)}; use "HOST:CONTAINER"`);
      continue;
    }
    if (mapping.published !== mapping.target) {
      report(`publishes ${mapping.target} as ${String(mapping.published)}; publish it as the same port, which the docs and defaults name`);
    }
    const listener = model.listeners.find((candidate) => candidate.port === mapping.target);
    if (listener === undefined) {
      report(`publishes container port ${mapping.target}, but nothing listens there (it listens on ${describe(model.listeners)})`);
    } else if (!ALL_INTERFACES.has(listener.host)) {
      report(`publishes ${mapping.target}, but ${listener.origin} listens on ${listener.host} only; set it to 0.0.0.0`);
    }
  }
}

function checkHealthcheck(service: ComposeService, model: ServiceModel, report: (m: string) => void): void {
  const test = service.healthcheck?.test;
  const words = typeof test === 'string' ? test.split(/\s+/) : (test ?? []);
  for (const word of words) {
    const url = /^https?:\/\/([^/:]+|\[[^\]]+\]):(\d+)/.exec(word);
    if (!url || !LOCAL_HOSTS.has(url[1]!)) continue;
    if (!model.listeners.some((listener) => listener.port === Number(url[2]))) {
      report(`healthcheck probes ${word}, but nothing listens on port ${url[2]} (it listens on ${describe(model.listeners)})`);
    }
  }
}

function checkDependsOn(service: ComposeService, services: Record<string, ComposeService>, report: (m: string) => void): void {
  const dependencies = Array.isArray(service.depends_on)
    ? service.depends_on.map((name) => [name, {}] as const)
    : Object.entries(service.depends_on ?? {});
  for (const [name, { condition }] of dependencies as [string, { condition?: string }][]) {
    const target = services[name];
    if (target === undefined) report(`depends_on ${name}, which is not a service`);
    else if (condition === 'service_healthy' && target.healthcheck === undefined) report(`waits for ${name} to be healthy, but it has no healthcheck`);
  }
}

/** An address that names a compose service must hit a port that service listens on, on all interfaces, with the right protocol. */
function checkReference(reference: Reference, models: Map<string, ServiceModel>, report: (m: string) => void): void {
  const target = models.get(reference.host);
  if (target === undefined) return;
  const listener = target.listeners.find((candidate) => candidate.port === reference.port);
  if (listener === undefined) {
    report(`${reference.origin} points at ${reference.host}:${reference.port}, but ${reference.host} listens on ${describe(target.listeners)}`);
  } else if (!ALL_INTERFACES.has(listener.host)) {
    report(`${reference.origin} points at ${reference.host}:${reference.port}, but ${listener.origin} listens on ${listener.host} only`);
  } else if (reference.protocol !== undefined && reference.protocol !== listener.protocol) {
    report(`${reference.origin} speaks ${reference.protocol} to ${reference.host}:${reference.port}, which is ${listener.protocol} (${listener.origin})`);
  }
}

// ---- small readers ----

/** Environment as compose would set it, with `${VAR:-default}` interpolation resolved to the defaults. */
function environmentOf(service: ComposeService): Map<string, string> {
  const entries: [string, string][] = Array.isArray(service.environment)
    ? service.environment.map((line) => {
        const [name = '', ...value] = line.split('=');
        return [name, value.join('=')];
      })
    : Object.entries(service.environment ?? {}).map(([name, value]) => [name, value === null ? '' : String(value)]);
  return new Map(entries.map(([name, value]) => [name, interpolateDefaults(value)]));
}

function interpolateDefaults(value: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?]([^}]*))?\}/g, (_, _name: string, fallback: string | undefined) => fallback ?? '');
}

/** Addresses in a service's environment values (`http://host:port/…`, `host:port`) that may name other services. */
function referencesInEnvironment(service: ComposeService, serviceName: string): Reference[] {
  const references: Reference[] = [];
  for (const [name, value] of environmentOf(service)) {
    const match = /^(?:(https?):\/\/)?([A-Za-z0-9.-]+):(\d+)(?:\/.*)?$/.exec(value);
    if (match) references.push({ host: match[2]!, port: Number(match[3]), protocol: match[1] ? 'http' : undefined, origin: `${name} of ${serviceName}` });
  }
  return references;
}

function commandArgs(command: string | string[] | undefined): string[] {
  if (command === undefined) return [];
  return Array.isArray(command) ? command.map(String) : command.split(/\s+/).filter((word) => word !== '');
}

function mounts(service: ComposeService): { source?: string; target?: string; raw: string }[] {
  return (service.volumes ?? []).map((volume) => {
    if (typeof volume !== 'string') {
      const source = volume.type === 'bind' && volume.source !== undefined ? posix.normalize(volume.source) : undefined;
      return { source, target: volume.target, raw: JSON.stringify(volume) };
    }
    const [source = '', target] = volume.split(':');
    // A bare name is a named volume, not a host path.
    const isPath = source.startsWith('.') || source.startsWith('/');
    return { source: isPath ? posix.normalize(source) : undefined, target, raw: volume };
  });
}

function mountSources(service: ComposeService): string[] {
  return mounts(service).flatMap((mount) => (mount.source === undefined ? [] : [mount.source]));
}

function parsePort(entry: Port): { published?: number; target: number } | undefined {
  if (typeof entry === 'number') return { target: entry };
  if (typeof entry === 'object') {
    return entry.target === undefined ? undefined : { target: entry.target, published: entry.published === undefined ? undefined : Number(entry.published) };
  }
  const parts = entry.replace(/\/(tcp|udp)$/, '').split(':');
  const target = Number(parts.at(-1));
  const published = parts.length >= 2 ? Number(parts.at(-2)) : undefined;
  return Number.isInteger(target) && (published === undefined || Number.isInteger(published)) ? { target, published } : undefined;
}

function parseHostPort(address: string): { host: string; port: number } | undefined {
  const match = /^(.*):(\d+)$/.exec(address);
  return match ? { host: match[1]!, port: Number(match[2]) } : undefined;
}

function describe(listeners: Listener[]): string {
  return listeners.length === 0 ? 'nothing known' : listeners.map((listener) => `${listener.host}:${listener.port}`).join(', ');
}
