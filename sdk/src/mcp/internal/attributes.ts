import { SpanStatusCode, type Attributes, type Span } from '@opentelemetry/api';
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import type { JsonRpcResponse } from './messages.js';

/** Attribute names of the MCP semantic conventions (semantic-conventions-genai, `gen-ai/mcp.md`). */
export const MCP_ATTR = {
  methodName: 'mcp.method.name',
  sessionId: 'mcp.session.id',
  protocolVersion: 'mcp.protocol.version',
  resourceUri: 'mcp.resource.uri',
  requestId: 'jsonrpc.request.id',
  statusCode: 'rpc.response.status_code',
  networkTransport: 'network.transport',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  errorType: 'error.type',
  operationName: 'gen_ai.operation.name',
  toolName: 'gen_ai.tool.name',
  promptName: 'gen_ai.prompt.name',
} as const;

export const TOOLS_CALL = 'tools/call';

/** Longest name kept in a span name: the peer chooses it, and span names should stay short. */
const MAX_TARGET_LENGTH = 128;

/** What a request message says about its span: `{mcp.method.name} {target}` and the request's attributes. */
export interface RequestSpanShape {
  name: string;
  attributes: Attributes;
  /** `gen_ai.tool.name` of a `tools/call`, else undefined. */
  toolName: string | undefined;
}

/**
 * The span name and attributes of an MCP request, as the conventions give
 * them: the tool or prompt name is the target; a tool call is a GenAI
 * `execute_tool` operation; the resource URI is an attribute, never the name.
 */
export function requestSpanShape(request: JSONRPCRequest): RequestSpanShape {
  const params = (request.params ?? {}) as { name?: unknown; uri?: unknown };
  const target = typeof params.name === 'string' ? params.name.slice(0, MAX_TARGET_LENGTH) : undefined;
  const attributes: Attributes = { [MCP_ATTR.methodName]: request.method, [MCP_ATTR.requestId]: String(request.id) };
  let toolName: string | undefined;
  if (request.method === TOOLS_CALL && target !== undefined) {
    toolName = target;
    attributes[MCP_ATTR.operationName] = 'execute_tool';
    attributes[MCP_ATTR.toolName] = target;
  } else if (request.method === 'prompts/get' && target !== undefined) {
    attributes[MCP_ATTR.promptName] = target;
  }
  if (request.method.startsWith('resources/') && typeof params.uri === 'string') attributes[MCP_ATTR.resourceUri] = params.uri;
  const named = request.method === TOOLS_CALL || request.method === 'prompts/get';
  return { name: named && target !== undefined ? `${request.method} ${target}` : request.method, attributes, toolName };
}

/**
 * A response's outcome on its span: a JSON-RPC error sets `error.type` and
 * `rpc.response.status_code` to its code; a tool result with `isError` sets
 * `error.type` = `tool_error`. Both mark the span ERROR.
 */
export function recordResponse(span: Span, response: JsonRpcResponse, toolCall: boolean): void {
  if (response.error !== undefined) {
    const code = String(response.error.code);
    span.setAttribute(MCP_ATTR.errorType, code);
    span.setAttribute(MCP_ATTR.statusCode, code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: typeof response.error.message === 'string' ? response.error.message : undefined });
  } else if (toolCall && response.result?.isError === true) {
    span.setAttribute(MCP_ATTR.errorType, 'tool_error');
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'the tool returned an error result' });
  }
}

/** A call that ended without a response: the connection closed, or the request was cancelled. */
export function recordNoResponse(span: Span, reason: 'connection_closed' | 'cancelled'): void {
  span.setAttribute(MCP_ATTR.errorType, reason);
  span.setStatus({ code: SpanStatusCode.ERROR, message: reason === 'cancelled' ? 'the request was cancelled' : 'the connection closed before the response' });
}

/** `network.transport` of a transport: `pipe` for stdio (the SDK's own classes), else undefined. */
export function stdioTransport(transport: object): 'pipe' | undefined {
  const name = transport.constructor?.name;
  return name === 'StdioClientTransport' || name === 'StdioServerTransport' ? 'pipe' : undefined;
}
