import { context, ROOT_CONTEXT, SpanKind, trace, type Attributes, type Context, type Link, type Span } from '@opentelemetry/api';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, JSONRPCRequest, MessageExtraInfo, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { AUDIT } from '../../audit/internal/attributes.js';
import { auditToolBoundary } from '../../audit/internal/runtime-audit.js';
import type { RuntimeCheck } from '../../audit/types.js';
import type { RequestContextImpl } from '../../context/internal/request-context.js';
import { recordError, requestContextOf, runRequest } from '../../context/internal/request-scope.js';
import type { Identity } from '../../http/types.js';
import { reportOnce } from '../../tracing/internal/report.js';
import type { McpIdentifyInfo, McpInboundRequest, McpServerTransportOptions } from '../types.js';
import { ForwardingTransport } from './forwarding-transport.js';
import { MCP_ATTR, recordNoResponse, recordResponse, requestSpanShape, stdioTransport } from './attributes.js';
import { baggageIdentity, extractTrace, metaCorrelationId, withMetaBaggage } from './meta-propagation.js';
import { cancelledRequestId, isRequest, isResponse, metaOf, type JsonRpcResponse } from './messages.js';

/** JSON-RPC error of a request identify() refused (implementation-defined range; the MCP SDK uses -32000 to -32001). */
const UNAUTHENTICATED = { code: -32003, message: 'unauthenticated' } as const;
/** JSON-RPC error of a request that could not get a request context (isotrace not started, a bad identity). */
const INTERNAL_ERROR = { code: -32603, message: 'internal error' } as const;

const NONE_FAILED: ReadonlySet<RuntimeCheck> = new Set();

/** One request being handled: its request context and SERVER span, until its response is sent. */
interface ServerCall {
  owner: RequestContextImpl;
  span: Span | undefined;
  toolCall: boolean;
  failedAtStart: ReadonlySet<RuntimeCheck>;
  /** Lets the request (and its span) end. */
  settle(): void;
}

/** A request waiting for an asynchronous identify(): a cancellation meanwhile means it never runs. */
interface Identifying {
  cancelled: boolean;
}

/**
 * Traces an MCP server's transport and runs every inbound request in its own
 * request context: a SERVER span `{mcp.method.name} {target}` (e.g.
 * `tools/call get_stock`; for tool calls also the GenAI `execute_tool`
 * attributes and the run-time isolation audits) that is the request span,
 * ends when the response is sent, and continues the trace the client put in
 * `params._meta` (linking the ambient span, e.g. the HTTP request's).
 *
 * Identity comes only from `identify()`; `_meta` baggage is kept only when
 * `trustInbound()` says the peer is trusted (and then also offered to
 * identify() as `trustedIdentity`). A refused request is answered with
 * JSON-RPC error -32003 `unauthenticated` and its handler never runs.
 *
 * Connect your McpServer to the returned transport and keep using the
 * original for everything else (e.g. `handleRequest()` of a Streamable HTTP
 * transport). Throws TypeError for bad arguments.
 *
 * ```ts
 * const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID() });
 * await mcpServer.connect(mcpServerTransport(transport, { identify: ({ requestInfo }) => auth(requestInfo?.headers) }));
 * // in the HTTP handler: await transport.handleRequest(req, res, body);
 * ```
 */
export function mcpServerTransport(transport: Transport, options: McpServerTransportOptions): Transport {
  if (transport === null || typeof transport !== 'object' || typeof transport.send !== 'function' || typeof transport.start !== 'function') {
    throw new TypeError('mcpServerTransport(transport, options): transport must be an MCP Transport (start, send, close).');
  }
  if (options === null || typeof options !== 'object' || typeof options.identify !== 'function') {
    throw new TypeError("mcpServerTransport: option 'identify' must be a function returning the request's tenantId and userId.");
  }
  if (options.trustInbound !== undefined && typeof options.trustInbound !== 'function') throw new TypeError("mcpServerTransport: option 'trustInbound' must be a function.");
  return new TracedServerTransport(transport, options);
}

class TracedServerTransport extends ForwardingTransport {
  readonly #options: McpServerTransportOptions;
  readonly #pending = new Map<RequestId, ServerCall>();
  readonly #identifying = new Map<RequestId, Identifying>();

  constructor(inner: Transport, options: McpServerTransportOptions) {
    super(inner);
    this.#options = options;
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const call = isResponse(message) ? this.#take(message.id) : undefined;
    if (!call || !isResponse(message)) return this.inner.send(message, options);
    const response = respond(call, message);
    if (typeof response.result?.protocolVersion === 'string') this.protocolVersion = response.result.protocolVersion;
    try {
      await this.inner.send(response as JSONRPCMessage, options);
    } catch (error) {
      if (call.span) recordError(call.span, error);
      throw error;
    } finally {
      call.settle();
    }
  }

  protected receive(message: JSONRPCMessage, extra: MessageExtraInfo | undefined): void {
    if (isRequest(message)) {
      this.#serve(message, extra);
      return;
    }
    const cancelled = cancelledRequestId(message);
    if (cancelled !== undefined) this.#cancel(cancelled);
    this.onmessage?.(message, extra);
  }

  /** Identifies the request, then runs it in its request context; a refused one is answered here. */
  #serve(request: JSONRPCRequest, extra: MessageExtraInfo | undefined): void {
    const inbound: McpInboundRequest = { method: request.method, requestInfo: extra?.requestInfo, authInfo: extra?.authInfo, sessionId: this.inner.sessionId };
    const trusted = isTrusted(this.#options, inbound);
    const meta = metaOf(request);
    const ambient = context.active();
    const remote = extractTrace(meta);
    const ambientSpan = trace.getSpanContext(ambient);
    const start: RequestStart = {
      request,
      extra,
      parent: trusted ? withMetaBaggage(remote ?? ambient, meta) : (remote ?? ambient),
      links: remote && ambientSpan ? [{ context: ambientSpan }] : [],
      correlationId: metaCorrelationId(meta) ?? requestContextOf(ambient)?.correlationId,
    };
    const info: McpIdentifyInfo = { ...inbound, trustedIdentity: trusted ? baggageIdentity(withMetaBaggage(ROOT_CONTEXT, meta)) : undefined };
    let identified: Identity | undefined | PromiseLike<Identity | undefined>;
    try {
      identified = this.#options.identify(info);
    } catch (error) {
      this.#refuse(request.id, UNAUTHENTICATED, error);
      return;
    }
    // A synchronous answer runs the request at once, so requests keep their order.
    if (!isThenable(identified)) {
      this.#run(start, identified);
      return;
    }
    const waiting: Identifying = { cancelled: false };
    this.#identifying.set(request.id, waiting);
    identified.then(
      (identity) => {
        if (this.#identifying.get(request.id) === waiting) this.#identifying.delete(request.id);
        if (!waiting.cancelled) this.#run(start, identity);
      },
      (error: unknown) => {
        if (this.#identifying.get(request.id) === waiting) this.#identifying.delete(request.id);
        if (!waiting.cancelled) this.#refuse(request.id, UNAUTHENTICATED, error);
      },
    );
  }

  #run(start: RequestStart, identity: Identity | undefined): void {
    const { request, extra } = start;
    if (!identity) {
      this.#refuse(request.id, UNAUTHENTICATED);
      return;
    }
    const shape = requestSpanShape(request);
    const toolCall = shape.toolName !== undefined;
    const attributes: Attributes = { ...shape.attributes, ...this.#connectionAttributes(extra) };
    if (toolCall) attributes[AUDIT.result] = 'pass';
    let dispatched = false;
    runRequest(
      { ...identity, ...(start.correlationId ? { correlationId: start.correlationId } : {}), name: shape.name },
      () => {
        const owner = requestContextOf(context.active()) as RequestContextImpl;
        const span = trace.getActiveSpan();
        const failedAtStart = toolCall && span ? auditToolBoundary(owner, span) : NONE_FAILED;
        const done = new Promise<void>((settle) => this.#track(request.id, { owner, span, toolCall, failedAtStart, settle }));
        dispatched = true;
        try {
          // The SDK runs the handler and sends its response from promise callbacks made here: both in this request's context.
          this.onmessage?.(request, extra);
        } catch (error) {
          this.#take(request.id);
          throw error;
        }
        return done;
      },
      { kind: SpanKind.SERVER, links: start.links, attributes },
      start.parent,
    ).catch((error: unknown) => {
      // After dispatch the error is on the span and the SDK answers; before it, nothing ran: answer here.
      if (!dispatched) this.#refuse(request.id, INTERNAL_ERROR, error);
    });
  }

  #track(id: RequestId, call: ServerCall): void {
    // A client reusing an id in flight: the earlier call will get no response of its own.
    this.#take(id)?.settle();
    this.#pending.set(id, call);
  }

  #take(id: RequestId): ServerCall | undefined {
    const call = this.#pending.get(id);
    if (call) this.#pending.delete(id);
    return call;
  }

  #connectionAttributes(extra: MessageExtraInfo | undefined): Attributes {
    const attributes: Attributes = {};
    const sessionId = this.inner.sessionId;
    if (sessionId !== undefined) attributes[MCP_ATTR.sessionId] = sessionId;
    if (this.protocolVersion !== undefined) attributes[MCP_ATTR.protocolVersion] = this.protocolVersion;
    const network = extra?.requestInfo ? 'tcp' : stdioTransport(this.inner);
    if (network) attributes[MCP_ATTR.networkTransport] = network;
    return attributes;
  }

  /** The client cancelled: the SDK sends no response, so the request ends here (or never starts). */
  #cancel(id: RequestId): void {
    const waiting = this.#identifying.get(id);
    if (waiting) {
      waiting.cancelled = true;
      this.#identifying.delete(id);
    }
    const call = this.#take(id);
    if (call) endWithoutResponse(call, 'cancelled');
  }

  protected innerClosed(): void {
    for (const waiting of this.#identifying.values()) waiting.cancelled = true;
    this.#identifying.clear();
    for (const id of [...this.#pending.keys()]) {
      const call = this.#take(id);
      if (call) endWithoutResponse(call, 'connection_closed');
    }
  }

  /** Answers a request that got no request context; identify()'s or isotrace's error goes to diag, never to the client. */
  #refuse(id: RequestId, answer: { code: number; message: string }, error?: unknown): void {
    if (error !== undefined) {
      const kind = answer === UNAUTHENTICATED ? 'mcp-identify-threw' : 'mcp-request-context-failed';
      reportOnce(kind, answer === UNAUTHENTICATED ? 'identify() threw for an MCP request; answered "unauthenticated".' : 'an MCP request could not get a request context; answered "internal error".', error);
    }
    this.inner.send({ jsonrpc: '2.0', id, error: { ...answer } }).catch((sendError: unknown) => this.onerror?.(sendError instanceof Error ? sendError : new Error(String(sendError))));
  }
}

/** What a request needs to start once identified. */
interface RequestStart {
  request: JSONRPCRequest;
  extra: MessageExtraInfo | undefined;
  parent: Context;
  links: Link[];
  correlationId: string | undefined;
}

/**
 * The response's outcome on the span and, for a tool call, the end-of-call
 * audits where the response is sent. In `audit: 'throw'` mode a violation
 * replaces the result with an internal error: it may hold another request's data.
 */
function respond(call: ServerCall, response: JSONRPCMessage & JsonRpcResponse): JSONRPCMessage & JsonRpcResponse {
  const { span } = call;
  if (!span) return response;
  try {
    recordResponse(span, response, call.toolCall);
  } catch (error) {
    reportOnce('mcp-server-record-failed', 'recording an MCP response on its span failed.', error);
  }
  if (!call.toolCall) return response;
  try {
    auditToolBoundary(call.owner, span, call.failedAtStart);
    return response;
  } catch (violation) {
    recordError(span, violation);
    return { jsonrpc: '2.0', id: response.id, error: { ...INTERNAL_ERROR } } as JSONRPCMessage & JsonRpcResponse;
  }
}

function endWithoutResponse(call: ServerCall, reason: 'cancelled' | 'connection_closed'): void {
  try {
    if (call.span) recordNoResponse(call.span, reason);
  } finally {
    call.settle();
  }
}

function isTrusted(options: McpServerTransportOptions, request: McpInboundRequest): boolean {
  try {
    return options.trustInbound?.(request) === true;
  } catch (error) {
    reportOnce('mcp-trust-inbound-threw', 'trustInbound() threw for an MCP request; treating the peer as untrusted.', error);
    return false;
  }
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | undefined)?.then === 'function';
}
