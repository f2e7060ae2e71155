import type { ClientRequest, RequestOptions } from 'node:http';

// The builtin, not its ES module view: building node:http's costs tens of ms at import (it evaluates undici for its lazy exports).
const { Agent: HttpAgent } = process.getBuiltinModule('node:http');
type HttpAgent = InstanceType<typeof HttpAgent>;
const { Agent: HttpsAgent } = process.getBuiltinModule('node:https');

/*
 * Where an outbound request really goes, read from the request the client
 * dispatches, never from the URL a span reports (the instrumentations build
 * `url.full` by joining origin and path, so a path like `//api.internal/x`
 * would name a host the request never reaches). Anything that does not look
 * like a plain origin-form HTTP request gives undefined: no baggage.
 */

/** The part of an undici request the destination comes from (`undici:request:create`). */
export interface UndiciRequestLike {
  origin?: unknown;
  path?: unknown;
}

/** An undici request: its dispatcher's origin (scheme, host, port) and its own path. */
export function undiciDestination(request: UndiciRequestLike): URL | undefined {
  const { origin, path } = request;
  if ((typeof origin !== 'string' && !(origin instanceof URL)) || typeof path !== 'string') return undefined;
  const base = parse(String(origin));
  if (!base || !isHttp(base)) return undefined;
  return withPath(base.origin, path);
}

/**
 * A node:http(s) request: the host and port Node connects to, derived as
 * Node does (`hostname` over `host`; the port from the options, else the
 * agent's default; the agent's own options over the request's), and the
 * request's path. A unix socket, a `createConnection` option or an agent
 * that makes its connections its own way: undefined.
 */
export function nodeHttpDestination(request: ClientRequest, options: RequestOptions): URL | undefined {
  const { agent, socketPath } = request as ClientRequest & { agent?: unknown; socketPath?: unknown };
  if (!connectsLikeNode(agent)) return undefined;
  const agentOptions = (agent as HttpAgent & { options?: Record<string, unknown> }).options ?? {};
  const connection: Record<string, unknown> = { host: request.host, port: requestPort(options, agent), socketPath, ...agentOptions };
  if (connection.socketPath) return undefined;
  const host = connection.host || 'localhost';
  const port = Number(connection.port);
  if (typeof host !== 'string' || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const origin = originOf(request.protocol, host, port);
  return origin === undefined ? undefined : withPath(origin, request.path);
}

/** `options.port || options.defaultPort || agent.defaultPort || 80`, as Node's ClientRequest computes it. */
function requestPort(options: RequestOptions, agent: HttpAgent): unknown {
  return options.port || options.defaultPort || (agent as HttpAgent & { defaultPort?: number }).defaultPort || 80;
}

const PLAIN_CONNECTIONS: ReadonlySet<unknown> = new Set([HttpAgent.prototype.createConnection, HttpsAgent.prototype.createConnection]);

/** The Agent methods that decide where a socket goes (not in @types/node). */
type AgentInternals = HttpAgent & { createConnection: unknown; createSocket: unknown; addRequest: unknown };
const NODE_AGENT = HttpAgent.prototype as AgentInternals;

/** An http(s).Agent whose sockets come from Node's own code, so its options say where they go. */
function connectsLikeNode(agent: unknown): agent is HttpAgent {
  if (!(agent instanceof HttpAgent)) return false;
  const own = agent as AgentInternals;
  return PLAIN_CONNECTIONS.has(own.createConnection) && own.createSocket === NODE_AGENT.createSocket && own.addRequest === NODE_AGENT.addRequest;
}

/** `scheme://host:port`, only when the host is nothing but a host (no user info, path or port of its own). */
function originOf(protocol: string, host: string, port: number): string | undefined {
  if (protocol !== 'http:' && protocol !== 'https:') return undefined;
  const hostForUrl = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const url = parse(`${protocol}//${hostForUrl}:${port}`);
  if (!url || url.username || url.password || url.pathname !== '/' || url.search || url.hash) return undefined;
  return effectivePortOf(url) === String(port) ? url.origin : undefined;
}

/** Origin and path joined, never resolved: `new URL('//api.internal/x', origin)` would change the host. */
function withPath(origin: string, path: string): URL | undefined {
  // Only origin-form targets: an absolute-form or malformed path is not a plain request to this origin.
  if (!path.startsWith('/')) return undefined;
  const url = parse(origin + path);
  return url?.origin === origin ? url : undefined;
}

function isHttp(url: URL): boolean {
  return url.protocol === 'http:' || url.protocol === 'https:';
}

function effectivePortOf(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

function parse(text: string): URL | undefined {
  return URL.canParse(text) ? new URL(text) : undefined;
}
