import type { JSONRPCMessage, JSONRPCRequest, RequestId } from '@modelcontextprotocol/sdk/types.js';

/*
 * JSON-RPC message shapes, told apart the way the MCP SDK's Protocol does it,
 * without importing the SDK at run time (isotrace/mcp loads without it).
 */

/** A JSON-RPC response: a `result` or an `error` for an `id`. */
export interface JsonRpcResponse {
  id: RequestId;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

export function isRequest(message: JSONRPCMessage): message is JSONRPCRequest {
  return 'method' in message && 'id' in message && isRequestId(message.id);
}

export function isResponse(message: JSONRPCMessage): message is JSONRPCMessage & JsonRpcResponse {
  return !('method' in message) && 'id' in message && isRequestId(message.id) && ('result' in message || 'error' in message);
}

/** The request a `notifications/cancelled` message cancels, if it is one. */
export function cancelledRequestId(message: JSONRPCMessage): RequestId | undefined {
  if (!('method' in message) || message.method !== 'notifications/cancelled' || 'id' in message) return undefined;
  const requestId = (message.params as { requestId?: unknown } | undefined)?.requestId;
  return isRequestId(requestId) ? requestId : undefined;
}

/** `params._meta` of a message when it is an object, else undefined. */
export function metaOf(request: JSONRPCRequest): Record<string, unknown> | undefined {
  const meta = (request.params as { _meta?: unknown } | undefined)?._meta;
  return meta !== null && typeof meta === 'object' && !Array.isArray(meta) ? (meta as Record<string, unknown>) : undefined;
}

/**
 * A copy of `request` whose `params._meta` also holds `entries`. Never edits
 * the original: its params may be the caller's own object, reused for
 * another call (another request's baggage must not stay on it).
 */
export function withMeta(request: JSONRPCRequest, entries: Record<string, string>): JSONRPCRequest {
  const params = request.params ?? {};
  return { ...request, params: { ...params, _meta: { ...metaOf(request), ...entries } } };
}

function isRequestId(id: unknown): id is RequestId {
  return typeof id === 'string' || typeof id === 'number';
}
