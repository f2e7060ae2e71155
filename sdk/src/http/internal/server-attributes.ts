import type { IncomingMessage } from 'node:http';
import type { Attributes, Span } from '@opentelemetry/api';
import { directAttributes, putAttribute } from '../../context/internal/checked-attributes.js';

/** What Express (and routers like it) add to the request. */
interface RoutedRequest extends IncomingMessage {
  /** The request target before any mount path was stripped from `url`. */
  originalUrl?: unknown;
  /** The mount path of the router that matched the route. */
  baseUrl?: unknown;
  route?: { path?: unknown } | undefined;
}

/** Longest Host / X-Forwarded-Host value that is read at all. */
const MAX_AUTHORITY_LENGTH = 255;

/** `host`, `host:port`, `[v6]` or `[v6]:port`, nothing else (no user info, path or spaces). */
const AUTHORITY = /^(\[[0-9A-Fa-f:.]+\]|[^\s:/?#@[\]]+)(?::(\d{1,5}))?$/;

/**
 * The SERVER span's attributes per the HTTP semantic conventions. `start` is
 * what a sampler sees: the method and `url.path` (the full path, also under an
 * Express mount point). The rest is written once the span exists, with
 * putServerAttributes(): `url.scheme`, `server.address` and `server.port`
 * (from the Host header, or the local socket without one), user agent and
 * peer address. The scheme and host of `X-Forwarded-Proto` /
 * `X-Forwarded-Host` are believed only from a trusted peer.
 *
 * Why two parts: the SDK validates attributes given at start twice (before
 * and after sampling), one WeakSet per value each time; on a SERVER span that
 * was most of its start. The values here are strings and integers, valid as
 * they are, and go in directly (see putAttribute()).
 */
export interface ServerAttributes {
  readonly start: Attributes;
  readonly scheme: 'http' | 'https';
  readonly address: string | undefined;
  readonly port: number | undefined;
  readonly userAgent: string | undefined;
  readonly peerAddress: string | undefined;
}

/** The SERVER span's attributes of `req` (see ServerAttributes). */
export function serverSpanAttributes(req: IncomingMessage, trusted: boolean): ServerAttributes {
  const scheme = schemeOf(req, trusted);
  const server = serverOf(req, trusted, scheme);
  const agent = req.headers['user-agent'];
  return {
    start: { 'http.request.method': req.method ?? 'GET', 'url.path': pathOf(targetOf(req)) },
    scheme,
    address: server.address,
    port: server.port,
    userAgent: agent ? agent.slice(0, 256) : undefined,
    peerAddress: req.socket?.remoteAddress || undefined,
  };
}

/**
 * Writes the attributes of `attributes` that are not given at start onto the
 * started SERVER span. Like attributes given at start, they do not replace
 * any a span processor set when the span started.
 */
export function putServerAttributes(span: Span, attributes: ServerAttributes): void {
  const direct = directAttributes(span);
  putAttribute(span, direct, 'url.scheme', attributes.scheme, false);
  if (attributes.address !== undefined) putAttribute(span, direct, 'server.address', attributes.address, false);
  if (attributes.port !== undefined) putAttribute(span, direct, 'server.port', attributes.port, false);
  if (attributes.userAgent !== undefined) putAttribute(span, direct, 'user_agent.original', attributes.userAgent, false);
  if (attributes.peerAddress !== undefined) putAttribute(span, direct, 'network.peer.address', attributes.peerAddress, false);
}

/**
 * Follows the route an Express-style router dispatches the request to: it
 * sets `req.route` on the request, and at that moment `req.baseUrl` is the
 * mount path of the router holding the route (by the time the response ends
 * a router may have restored it, e.g. on the way to an app-level error
 * handler). Returns a reader of the full route template (`/api/items/:id`),
 * undefined when no route with a string path was dispatched, and for plain
 * node:http requests.
 */
export function watchRoute(req: IncomingMessage): () => string | undefined {
  const routed = req as RoutedRequest;
  if (typeof routed.originalUrl !== 'string') return noRoute;
  let current = routed.route;
  let template: string | undefined;
  try {
    Object.defineProperty(routed, 'route', {
      configurable: true,
      enumerable: true,
      get: () => current,
      set: (route: RoutedRequest['route']) => {
        current = route;
        template = typeof route?.path === 'string' ? joinRoute(routed.baseUrl, route.path) : undefined;
      },
    });
  } catch {
    // A request object that cannot take the property: no route is better than a guessed one.
    return noRoute;
  }
  return () => template;
}

function noRoute(): undefined {
  return undefined;
}

function joinRoute(baseUrl: unknown, path: string): string {
  const base = typeof baseUrl === 'string' ? baseUrl.replace(/\/$/, '') : '';
  if (!base) return path;
  return path === '/' ? base : `${base}${path}`;
}

/** The request target as the client sent it: Express strips a mount path from `req.url` and keeps the original. */
function targetOf(req: IncomingMessage): string | undefined {
  const original = (req as RoutedRequest).originalUrl;
  return typeof original === 'string' ? original : req.url;
}

/** The path of a request target in origin form (`/x?q`) or absolute form (`http://host/x`). */
function pathOf(target: string | undefined): string {
  if (!target) return '/';
  if (!target.startsWith('/') && URL.canParse(target)) return new URL(target).pathname;
  return target.split('?')[0] ?? '/';
}

function schemeOf(req: IncomingMessage, trusted: boolean): 'http' | 'https' {
  if (trusted) {
    const forwarded = firstValue(req.headers['x-forwarded-proto'])?.toLowerCase();
    if (forwarded === 'http' || forwarded === 'https') return forwarded;
  }
  return (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true ? 'https' : 'http';
}

/** Host and port the client addressed (RFC 9110: no port in Host means the scheme's default), else the local socket's. */
function serverOf(req: IncomingMessage, trusted: boolean, scheme: string): { address?: string; port?: number } {
  const authority = (trusted ? firstValue(req.headers['x-forwarded-host']) : undefined) ?? req.headers.host;
  const parsed = authority === undefined ? undefined : parseAuthority(authority);
  if (parsed) return { address: parsed.address, port: parsed.port ?? (scheme === 'https' ? 443 : 80) };
  return { address: req.socket?.localAddress, port: req.socket?.localPort };
}

function parseAuthority(authority: string): { address: string; port: number | undefined } | undefined {
  if (authority.length > MAX_AUTHORITY_LENGTH) return undefined;
  const match = AUTHORITY.exec(authority.trim());
  if (!match) return undefined;
  const host = match[1]!;
  const port = match[2] === undefined ? undefined : Number(match[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { address: host.startsWith('[') ? host.slice(1, -1) : host.toLowerCase(), port };
}

/** The first of a comma-separated list header (the client-most proxy's value). */
function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const first = value?.split(',')[0]?.trim();
  return first ? first : undefined;
}
