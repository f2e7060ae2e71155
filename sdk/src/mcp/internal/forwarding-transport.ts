import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, MessageExtraInfo } from '@modelcontextprotocol/sdk/types.js';

/**
 * What isotrace's MCP client and server transports share: they take over the wrapped
 * transport's callbacks (so wrap it before `connect()`) and pass everything else through.
 * A subclass traces what it sends (send()) and receives (receive()).
 */
export abstract class ForwardingTransport implements Transport {
  onmessage?: Transport['onmessage'];
  onclose?: Transport['onclose'];
  onerror?: Transport['onerror'];
  readonly #inner: Transport;
  #protocolVersion: string | undefined;

  constructor(inner: Transport) {
    this.#inner = inner;
    // Plain assignments: the node Streamable HTTP transport forwards these setters to its inner transport.
    inner.onmessage = (message, extra) => this.receive(message, extra);
    inner.onclose = () => {
      this.innerClosed();
      this.onclose?.();
    };
    inner.onerror = (error) => this.onerror?.(error);
  }

  get sessionId(): string | undefined {
    return this.#inner.sessionId;
  }

  setProtocolVersion(version: string): void {
    this.#protocolVersion = version;
    this.#inner.setProtocolVersion?.(version);
  }

  start(): Promise<void> {
    return this.#inner.start();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  abstract send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void>;

  /** A message from the wrapped transport; the subclass hands it on to `onmessage`. */
  protected abstract receive(message: JSONRPCMessage, extra: MessageExtraInfo | undefined): void;

  /** The wrapped transport closed: end what is still in flight (runs before `onclose`). */
  protected abstract innerClosed(): void;

  /** The wrapped transport. */
  protected get inner(): Transport {
    return this.#inner;
  }

  /** The MCP protocol version of the connection, once known. */
  protected get protocolVersion(): string | undefined {
    return this.#protocolVersion;
  }

  protected set protocolVersion(version: string | undefined) {
    this.#protocolVersion = version;
  }
}
