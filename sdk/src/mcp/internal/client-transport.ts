import { context, SpanKind, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, JSONRPCRequest, MessageExtraInfo, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { recordError, requestContextOf } from '../../context/internal/request-scope.js';
import { RequestContextMissingError } from '../../errors/errors.js';
import { PropagationPolicy } from '../../propagation/internal/propagation-policy.js';
import { reportOnce } from '../../tracing/internal/report.js';
import { tryGetRuntime, type Runtime } from '../../tracing/internal/runtime.js';
import type { McpClientTransportOptions } from '../types.js';
import { ForwardingTransport } from './forwarding-transport.js';
import { MCP_ATTR, recordNoResponse, recordResponse, requestSpanShape, stdioTransport, TOOLS_CALL } from './attributes.js';
import { metaEntries } from './meta-propagation.js';
import { cancelledRequestId, isRequest, isResponse, withMeta, type JsonRpcResponse } from './messages.js';

/** One request in flight: the span that stands for it until its response. */
interface ClientCall {
  span: Span;
  /** False for an enriched `execute_tool` span: its tool call ends it, not the response. */
  owned: boolean;
  toolCall: boolean;
}

/**
 * Traces an MCP client's transport: every request it sends gets a CLIENT
 * span `{mcp.method.name} {target}` (e.g. `tools/call get_stock`) in the
 * caller's context, ended by the response with the same id, and carries
 * the span's `traceparent`/`tracestate` in `params._meta`. Baggage goes into
 * `_meta` only when the server (option `server`, or the transport's URL) is
 * a `propagateTo` target.
 *
 * Inside an `execute_tool` span of the same tool (an isotrace tool, or the AI
 * SDK's, that calls the MCP tool) the call adds the MCP attributes to that
 * span instead of opening a second one, as the GenAI conventions say.
 *
 * A `tools/call` outside a request rejects with RequestContextMissingError:
 * a remote tool never runs for nobody. Other requests (initialize,
 * tools/list at start-up) are traced wherever they run.
 *
 * Wrap the transport before `client.connect()`: the wrapper takes over its
 * callbacks. Throws TypeError for a bad `server`.
 *
 * ```ts
 * const transport = mcpClientTransport(new StdioClientTransport({ command: 'inventory-mcp' }), { server: 'mcp://inventory' });
 * await client.connect(transport);
 * ```
 */
export function mcpClientTransport(transport: Transport, options: McpClientTransportOptions = {}): Transport {
  if (transport === null || typeof transport !== 'object' || typeof transport.send !== 'function' || typeof transport.start !== 'function') {
    throw new TypeError('mcpClientTransport(transport): transport must be an MCP Transport (start, send, close).');
  }
  if (options === null || typeof options !== 'object') throw new TypeError('mcpClientTransport(transport, options): options must be an object.');
  return new TracedClientTransport(transport, serverUrl(options.server) ?? ownUrl(transport));
}

class TracedClientTransport extends ForwardingTransport {
  readonly #server: URL | undefined;
  readonly #pending = new Map<RequestId, ClientCall>();
  /** execute_tool spans already given MCP attributes: a second call in the same tool gets its own span. */
  readonly #enriched = new WeakSet<Span>();
  #policy: { runtime: Runtime; policy: PropagationPolicy } | undefined;

  constructor(inner: Transport, server: URL | undefined) {
    super(inner);
    this.#server = server;
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (isRequest(message)) return this.#sendRequest(message, options);
    await this.inner.send(message, options);
    const cancelled = cancelledRequestId(message);
    if (cancelled !== undefined) this.#end(cancelled, 'cancelled');
  }

  async #sendRequest(request: JSONRPCRequest, options: TransportSendOptions | undefined): Promise<void> {
    const active = context.active();
    if (request.method === TOOLS_CALL && !requestContextOf(active)) throw new RequestContextMissingError(`the MCP tools/call of '${String(request.params?.name)}'`);
    const traced = this.#trace(request, active);
    if (!traced) return this.inner.send(request, options);
    const { call, outgoing, spanContext } = traced;
    // Registered first: a response can arrive before send() settles.
    this.#pending.set(request.id, call);
    try {
      await context.with(spanContext, () => this.inner.send(outgoing, options));
    } catch (error) {
      this.#pending.delete(request.id);
      // An enriched execute_tool span records this failure itself, when the tool fails with it.
      if (call.owned) endCall(call, (span) => recordError(span, error));
      throw error;
    }
  }

  /** The call's span and the message carrying its context; undefined (send as is) when isotrace is not running or tracing it failed. */
  #trace(request: JSONRPCRequest, active: Context): { call: ClientCall; outgoing: JSONRPCRequest; spanContext: Context } | undefined {
    const runtime = tryGetRuntime();
    if (!runtime) return undefined;
    try {
      const shape = requestSpanShape(request);
      const attributes = { ...shape.attributes, ...this.#connectionAttributes() };
      const outer = this.#enrichable(active, shape.toolName);
      let call: ClientCall;
      if (outer) {
        this.#enriched.add(outer);
        outer.setAttributes(attributes);
        call = { span: outer, owned: false, toolCall: true };
      } else {
        call = { span: runtime.tracer.startSpan(shape.name, { kind: SpanKind.CLIENT, attributes }, active), owned: true, toolCall: shape.toolName !== undefined };
      }
      const spanContext = trace.setSpan(active, call.span);
      const outgoing = withMeta(request, metaEntries(spanContext, this.#allowsBaggage(runtime) ? active : undefined));
      return { call, outgoing, spanContext };
    } catch (error) {
      reportOnce('mcp-client-trace-failed', 'tracing an MCP request failed; it was sent without trace context.', error);
      return undefined;
    }
  }

  /** The active `execute_tool` span of this very tool, not enriched yet: the GenAI conventions' "outer span covers the call". */
  #enrichable(active: Context, toolName: string | undefined): Span | undefined {
    if (toolName === undefined) return undefined;
    const span = trace.getSpan(active);
    if (!span?.isRecording() || this.#enriched.has(span)) return undefined;
    const attributes = (span as Partial<ReadableSpan>).attributes;
    return attributes?.[MCP_ATTR.operationName] === 'execute_tool' && attributes[MCP_ATTR.toolName] === toolName ? span : undefined;
  }

  #connectionAttributes(): Attributes {
    const attributes: Attributes = {};
    const sessionId = this.inner.sessionId;
    if (sessionId !== undefined) attributes[MCP_ATTR.sessionId] = sessionId;
    if (this.protocolVersion !== undefined) attributes[MCP_ATTR.protocolVersion] = this.protocolVersion;
    const server = this.#server;
    if (server && (server.protocol === 'http:' || server.protocol === 'https:')) {
      attributes[MCP_ATTR.networkTransport] = 'tcp';
      attributes[MCP_ATTR.serverAddress] = server.hostname;
      attributes[MCP_ATTR.serverPort] = Number(server.port || (server.protocol === 'https:' ? 443 : 80));
    } else {
      const pipe = stdioTransport(this.inner);
      if (pipe) attributes[MCP_ATTR.networkTransport] = pipe;
    }
    return attributes;
  }

  /** Whether this server may receive baggage: named, and a propagateTo target. Compiled once per running isotrace. */
  #allowsBaggage(runtime: Runtime): boolean {
    if (!this.#server) return false;
    if (this.#policy?.runtime !== runtime) this.#policy = { runtime, policy: new PropagationPolicy(runtime.propagateTo) };
    return this.#policy.policy.allows(this.#server);
  }

  protected receive(message: JSONRPCMessage, extra: MessageExtraInfo | undefined): void {
    if (isResponse(message)) this.#finish(message);
    this.onmessage?.(message, extra);
  }

  #finish(response: JsonRpcResponse): void {
    const call = this.#pending.get(response.id);
    if (!call) return;
    this.#pending.delete(response.id);
    endCall(call, (span) => recordResponse(span, response, call.toolCall));
  }

  #end(id: RequestId, reason: 'cancelled' | 'connection_closed'): void {
    const call = this.#pending.get(id);
    if (!call) return;
    this.#pending.delete(id);
    if (call.owned) endCall(call, (span) => recordNoResponse(span, reason));
  }

  protected innerClosed(): void {
    for (const id of [...this.#pending.keys()]) this.#end(id, 'connection_closed');
  }
}

/** Records the outcome and ends the span when it is the call's own; telemetry never throws into the client. */
function endCall(call: ClientCall, record: (span: Span) => void): void {
  try {
    record(call.span);
  } catch (error) {
    reportOnce('mcp-client-record-failed', 'recording an MCP response on its span failed.', error);
  } finally {
    if (call.owned) call.span.end();
  }
}

function serverUrl(server: string | URL | undefined): URL | undefined {
  if (server === undefined) return undefined;
  const url = server instanceof URL ? new URL(server.href) : typeof server === 'string' && URL.canParse(server) ? new URL(server) : undefined;
  if (!url || url.hostname === '') {
    throw new TypeError(`mcpClientTransport: option 'server' must be a URL naming the MCP server, e.g. 'mcp://inventory' (stdio) or 'https://mcp.internal/mcp'; got ${JSON.stringify(String(server))}.`);
  }
  return url;
}

/** The URL a Streamable HTTP or SSE client transport of the MCP SDK 1.x connects to (its `_url`); else undefined. */
function ownUrl(transport: Transport): URL | undefined {
  const url = (transport as { _url?: unknown })._url;
  return url instanceof URL ? new URL(url.href) : undefined;
}
