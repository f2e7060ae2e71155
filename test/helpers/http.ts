/**
 * HTTP test helpers: servers on 127.0.0.1 port 0, a raw client that writes
 * request bytes itself (node:net is not instrumented, so hand-crafted
 * traceparent/baggage headers arrive exactly as written, repeated ones too),
 * and a bounded wait for conditions such as "the span has ended".
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';

/** A listening server and how to reach and stop it. */
export interface TestServer {
  readonly server: Server;
  readonly port: number;
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  readonly origin: string;
  close(): Promise<void>;
}

/** Starts `listener` (or an already created server) on 127.0.0.1, port 0. */
export async function listen(listenerOrServer: RequestListener | Server): Promise<TestServer> {
  const server = typeof listenerOrServer === 'function' ? createServer(listenerOrServer) : listenerOrServer;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    origin: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      if (server.listening) {
        server.close();
        await once(server, 'close');
      }
    },
  };
}

/** A downstream service that answers every request with the headers it received, and remembers them. */
export interface RecordingServer extends TestServer {
  /** Headers of every request received so far, in arrival order. */
  readonly received: IncomingHttpHeaders[];
}

export async function recordingServer(): Promise<RecordingServer> {
  const received: IncomingHttpHeaders[] = [];
  const started = await listen((req, res) => {
    received.push(req.headers);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(req.headers));
  });
  return Object.assign(started, { received });
}

/** What rawRequest() read back. */
export interface RawResponse {
  status: number;
  /** Header names lower-cased; repeated headers joined with ', '. */
  headers: Record<string, string>;
  body: string;
  json<T = unknown>(): T;
}

export interface RawRequestOptions {
  method?: string;
  path?: string;
  /** Written in order, as given: repeat a name to send the header twice. */
  headers?: ReadonlyArray<readonly [string, string]>;
  body?: string;
}

/**
 * Sends one HTTP/1.1 request over a fresh TCP connection (`Connection: close`)
 * and reads the whole response. Header values are written as UTF-8 bytes.
 */
export async function rawRequest(port: number, options: RawRequestOptions = {}): Promise<RawResponse> {
  const { method = 'GET', path = '/', headers = [], body } = options;
  const lines = [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close', ...headers.map(([name, value]) => `${name}: ${value}`)];
  if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  let failure: Error | undefined;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', (error) => {
    failure = error;
  });
  // Not end(): a half-closed client makes node:http abort the request. `Connection: close` ends it.
  socket.write(Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body ?? ''}`, 'utf8'));
  await once(socket, 'close');
  if (failure && chunks.length === 0) throw failure;
  return parseResponse(Buffer.concat(chunks));
}

function parseResponse(bytes: Buffer): RawResponse {
  const headEnd = bytes.indexOf('\r\n\r\n');
  if (headEnd === -1) throw new Error(`rawRequest: incomplete response: ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}`);
  const [statusLine = '', ...headerLines] = bytes.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = Number(statusLine.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let payload = bytes.subarray(headEnd + 4);
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') payload = dechunk(payload);
  const body = payload.toString('utf8');
  return { status, headers, body, json: <T>() => JSON.parse(body) as T };
}

function dechunk(payload: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = payload.indexOf('\r\n', offset);
    if (lineEnd === -1) break;
    const size = parseInt(payload.subarray(offset, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(payload.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/**
 * Resolves once `condition()` returns a value other than undefined/false,
 * checking again every few milliseconds; rejects naming `what` after
 * `timeoutMs`. For waiting on work that completes after a response was sent
 * (a span ends once the server saw the response finish), never for asserting
 * how long anything took.
 */
export async function waitFor<T>(condition: () => T | undefined | false, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`waitFor: gave up waiting for ${what} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Parses `00-<trace id>-<span id>-<flags>` (traceparent or traceresponse). */
export function parseTraceHeader(value: string | null | undefined): { version: string; traceId: string; spanId: string; flags: string } | undefined {
  const match = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value ?? '');
  if (!match) return undefined;
  return { version: match[1]!, traceId: match[2]!, spanId: match[3]!, flags: match[4]! };
}

/**
 * One keep-alive TCP connection for many sequential raw requests (no
 * handshake per request). Every response must carry Content-Length.
 */
export interface RawConnection {
  request(options?: RawRequestOptions): Promise<RawResponse>;
  close(): void;
}

export async function openRawConnection(port: number): Promise<RawConnection> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let buffered = Buffer.alloc(0);
  let pending: { resolve: (response: RawResponse) => void; reject: (error: Error) => void } | undefined;
  const settle = (): void => {
    if (!pending) return;
    const headEnd = buffered.indexOf('\r\n\r\n');
    if (headEnd === -1) return;
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(buffered.subarray(0, headEnd).toString('latin1'))?.[1];
    if (length === undefined) {
      pending.reject(new Error('openRawConnection: a response without Content-Length'));
      pending = undefined;
      return;
    }
    const end = headEnd + 4 + Number(length);
    if (buffered.length < end) return;
    const response = parseResponse(buffered.subarray(0, end));
    buffered = buffered.subarray(end);
    const { resolve } = pending;
    pending = undefined;
    resolve(response);
  };
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    settle();
  });
  socket.on('error', (error) => pending?.reject(error));
  socket.on('close', () => pending?.reject(new Error('openRawConnection: the server closed the connection')));
  return {
    request: ({ method = 'GET', path = '/', headers = [], body } = {}) => {
      if (pending) return Promise.reject(new Error('openRawConnection: one request at a time'));
      const lines = [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...headers.map(([name, value]) => `${name}: ${value}`)];
      if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
      const response = new Promise<RawResponse>((resolve, reject) => {
        pending = { resolve, reject };
      });
      socket.write(Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body ?? ''}`, 'utf8'));
      return response;
    },
    close: () => {
      socket.destroy();
    },
  };
}
