/**
 * `isotrace/mcp`: Model Context Protocol (`@modelcontextprotocol/sdk` 1.x) client and
 * server transports with MCP spans, trace context in `params._meta`, and server
 * requests in their own request context.
 */
export { mcpClientTransport } from './internal/client-transport.js';
export { mcpServerTransport } from './internal/server-transport.js';
export type { McpClientTransportOptions, McpIdentifyInfo, McpInboundRequest, McpServerTransportOptions } from './types.js';
export type { Identity } from '../http/types.js';
export { RequestContextMissingError } from '../errors/errors.js';
