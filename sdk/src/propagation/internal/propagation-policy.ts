import type { PropagationTarget } from '../../tracing/types.js';

/** One compiled propagateTo target. */
type Rule = (url: URL) => boolean;

const DEFAULT_PORTS: Readonly<Record<string, string>> = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443' };

/** The port a URL really uses: URL leaves the scheme's default port out. */
function effectivePort(url: URL): string {
  return url.port || (DEFAULT_PORTS[url.protocol] ?? '');
}

/**
 * Which destinations may receive isotrace baggage, compiled once from
 * `propagateTo`. Targets were validated by startTracing(); one that slipped
 * through anyway matches nothing.
 */
export class PropagationPolicy {
  readonly #rules: readonly Rule[];

  constructor(targets: readonly PropagationTarget[]) {
    this.#rules = targets.map(compile);
  }

  /** False when no destination can ever match: callers skip all per-request work. */
  get allowsAny(): boolean {
    return this.#rules.length > 0;
  }

  allows(destination: URL): boolean {
    return this.#rules.some((rule) => rule(destination));
  }
}

/**
 * Why a propagateTo value cannot be used, as the end of a TypeError message
 * ("must be …; got …"), or undefined when every target is fine.
 */
export function propagateToProblem(value: unknown): string | undefined {
  for (const target of [value].flat()) {
    if (target instanceof RegExp || typeof target === 'function') continue;
    if (typeof target !== 'string' || target.length === 0) {
      return `host strings, URL prefixes, RegExps or predicates; got ${target === null ? 'null' : typeof target}`;
    }
    const problem = target.includes('://') ? prefixProblem(target) : hostProblem(target);
    if (problem) return `${problem}; got ${JSON.stringify(target)}`;
  }
  return undefined;
}

function compile(target: PropagationTarget): Rule {
  if (typeof target === 'function') return predicateRule(target);
  // search(), not test(): a /g or /y RegExp's lastIndex would make test() alternate between calls.
  if (target instanceof RegExp) return (url) => url.href.search(target) !== -1;
  if (typeof target !== 'string') return () => false;
  if (target.includes('://')) return prefixProblem(target) ? () => false : prefixRule(new URL(target));
  const host = parseHost(target);
  return host ? hostRule(host) : () => false;
}

/** A throwing predicate fails closed; each call gets its own URL, so a predicate that edits it changes nothing. */
function predicateRule(predicate: (url: URL) => boolean): Rule {
  return (url) => {
    try {
      return predicate(new URL(url.href)) === true;
    } catch {
      return false;
    }
  };
}

/**
 * A URL prefix: same scheme, host and port, and a path inside the prefix's
 * path on a segment boundary (`/v1` covers `/v1` and `/v1/x`, never `/v10`).
 */
function prefixRule(base: URL): Rule {
  const path = base.pathname;
  const within = path.endsWith('/') ? path : `${path}/`;
  return (url) => url.origin === base.origin && (url.pathname === path || url.pathname.startsWith(within));
}

function prefixProblem(target: string): string | undefined {
  const expected = 'a URL prefix like https://api.internal/v1/ (scheme, host, optional port and path)';
  if (!URL.canParse(target)) return `${expected}`;
  const url = new URL(target);
  if (url.hostname === '' || url.origin === 'null') return expected;
  if (url.username || url.password || url.search || url.hash || target.includes('?') || target.includes('#')) return `${expected}, without user info, query or fragment`;
  if (url.hostname.includes('*') || url.hostname.includes('%2a') || url.hostname.includes('%2A')) return `${expected}; wildcards are only supported in host targets ('*.internal')`;
  return undefined;
}

interface HostTarget {
  /** Lower-cased, as URL.hostname has it (IPv6 in brackets). */
  hostname: string;
  /** A leading `*.`: the host is any subdomain of `hostname`. */
  subdomains: boolean;
  port: string | undefined;
}

/**
 * A host target: `api.internal` (any port), `api.internal:8443`, `[::1]:9000`
 * or `::1`, and `*.internal` / `*.internal:8443` for any host under a domain.
 */
function hostRule({ hostname, subdomains, port }: HostTarget): Rule {
  const suffix = `.${hostname}`;
  return (url) => {
    if (port !== undefined && effectivePort(url) !== port) return false;
    return subdomains ? url.hostname.length > suffix.length && url.hostname.endsWith(suffix) : url.hostname === hostname;
  };
}

function hostProblem(target: string): string | undefined {
  if (parseHost(target)) return undefined;
  if (target.includes('*')) return "a host; the only wildcard is a leading '*.' label ('*.internal' matches a.internal and x.a.internal, not internal)";
  return "a host ('api.internal', 'api.internal:8443', '*.internal') or a URL prefix with its scheme ('https://api.internal/v1/')";
}

const HOST_AND_PORT = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d{1,5}))?$/;

function parseHost(target: string): HostTarget | undefined {
  // A bare IPv6 address (`::1`) has colons that are not a port separator.
  const bracketed = !target.startsWith('[') && (target.match(/:/g)?.length ?? 0) > 1 ? `[${target}]` : target;
  const match = HOST_AND_PORT.exec(bracketed);
  if (!match) return undefined;
  const [, rawHost = '', port] = match;
  if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65535)) return undefined;
  const subdomains = rawHost.startsWith('*.');
  const name = subdomains ? rawHost.slice(2) : rawHost;
  if (name.includes('*')) return undefined;
  const hostname = hostnameOf(name);
  // Under a wildcard the domain must be a name as written: an IP address or a rewritten name would make the suffix mean something else.
  if (!hostname || (subdomains && (hostname !== name.toLowerCase() || !/[a-z]/.test(hostname) || hostname.startsWith('[')))) return undefined;
  return { hostname, subdomains, port: port === undefined ? undefined : String(Number(port)) };
}

/** The normalised host name URL would use, or undefined when `name` is more than a host (a path, user info, a port). */
function hostnameOf(name: string): string | undefined {
  const candidate = `http://${name}/`;
  if (name === '' || !URL.canParse(candidate)) return undefined;
  const url = new URL(candidate);
  const onlyHost = url.username === '' && url.password === '' && url.port === '' && url.pathname === '/' && url.search === '' && url.hash === '';
  return onlyHost ? url.hostname : undefined;
}
