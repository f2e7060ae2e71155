import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { RequestInfo } from '@modelcontextprotocol/sdk/types.js';
import type { Identity } from '../http/types.js';

/** Options of mcpClientTransport(). */
export interface McpClientTransportOptions {
  /**
   * The MCP server's name as `propagateTo` sees it: isotrace baggage goes into
   * `params._meta` only when a propagateTo target matches it. Name stdio
   * servers here: `'mcp://inventory'` is matched by the host target
   * `'inventory'`, a RegExp or a predicate. Default: the URL of a Streamable
   * HTTP or SSE client transport; for any other transport none, so no
   * baggage is sent (traceparent always is).
   */
  server?: string | URL;
}

/** What an MCP server knows about an inbound request before it runs, for trustInbound(). */
export interface McpInboundRequest {
  /** The JSON-RPC method, e.g. `tools/call`. */
  readonly method: string;
  /** Streamable HTTP and SSE transports: the HTTP request's headers and URL. Undefined over stdio. */
  readonly requestInfo: RequestInfo | undefined;
  /** What your HTTP auth middleware put on `req.auth`, if any. */
  readonly authInfo: AuthInfo | undefined;
  /** The transport's session id (stateful Streamable HTTP), if any. */
  readonly sessionId: string | undefined;
}

/** What identify() is given: the inbound request, and a trusted peer's identity. */
export interface McpIdentifyInfo extends McpInboundRequest {
  /**
   * The identity (`isotrace.tenant_id`, `isotrace.user_id`,
   * `isotrace.job_id`) named by the baggage in the request's `_meta`,
   * present only when trustInbound() returned true for this request and the
   * baggage names both a tenant and a user. Undefined for every untrusted
   * peer, whatever its `_meta` says.
   */
  readonly trustedIdentity: Identity | undefined;
}

/** Options of mcpServerTransport(). */
export interface McpServerTransportOptions {
  /**
   * Your auth: the tenant and user an inbound MCP request acts for (from
   * `requestInfo.headers` or `authInfo` over HTTP; over stdio, usually the
   * identity the process was started for). Undefined, a throw or a rejection
   * refuses the request with JSON-RPC error -32003 `unauthenticated`; the
   * handler does not run. Never read from `_meta` (see `trustedIdentity`).
   */
  identify(request: McpIdentifyInfo): Identity | undefined | Promise<Identity | undefined>;
  /**
   * Whether the peer is trusted to send baggage in `_meta` (e.g. your own
   * agent service on a private network, or the parent process of a stdio
   * server). Default: nobody. Untrusted baggage is dropped, except a valid
   * correlation id. A throw counts as untrusted.
   */
  trustInbound?(request: McpInboundRequest): boolean;
}
