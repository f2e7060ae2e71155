/**
 * The SERVER span's HTTP semantic-convention attributes that say where a
 * request went: `url.scheme` (from the socket: plain TCP or TLS),
 * `server.address` / `server.port` (from the Host header, else the local
 * socket), and `X-Forwarded-Proto` / `X-Forwarded-Host` believed only from a
 * peer trustInbound() trusts.
 */
import { describe, it, expect } from 'vitest';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { IncomingMessage, Server } from 'node:http';
import { connect } from 'node:net';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { httpRequestContext, type Identity } from 'isotrace/http';
import { listen, waitFor } from '../../helpers/http.js';
import { useTestTracing } from 'isotrace/testing';

const kit = useTestTracing();

const TLS_DIR = new URL('../../fixtures/tls/', import.meta.url);
const tls = { key: readFileSync(new URL('localhost-key.pem', TLS_DIR)), cert: readFileSync(new URL('localhost-cert.pem', TLS_DIR)) };

function identify(): Identity {
  return { tenantId: 'acme', userId: 'u1' };
}

const answerOk = httpRequestContext({ identify }, (_req, res) => res.end('ok'));

/** Sends `head` (request line and headers, no blank line) over a fresh TCP connection; resolves to the x-request-id answered. */
async function sendHead(port: number, head: string): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.write(`${head}\r\nConnection: close\r\n\r\n`);
  await once(socket, 'close');
  const requestId = /\r\nx-request-id: ([^\r]+)/i.exec(Buffer.concat(chunks).toString('latin1'))?.[1];
  if (!requestId) throw new Error(`no x-request-id in ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`);
  return requestId;
}

function serverSpanFor(requestId: string): Promise<ReadableSpan> {
  return waitFor(() => kit.spans().find((span) => span.kind === SpanKind.SERVER && span.attributes['isotrace.request_id'] === requestId), `SERVER span of ${requestId}`);
}

async function withServer<T>(listener: Parameters<typeof listen>[0], fn: (port: number) => Promise<T>): Promise<T> {
  const server = await listen(listener);
  try {
    return await fn(server.port);
  } finally {
    await server.close();
  }
}

describe('the SERVER span says where the request went', () => {
  it.each([
    ['host:port', 'Shop.Example:8443', 'shop.example', 8443],
    ['a host without a port (the scheme’s default, 80)', 'shop.example', 'shop.example', 80],
    ['an IPv6 literal', '[::1]:9000', '::1', 9000],
  ])('takes server.address and server.port from a Host header of %s', async (_what, host, address, port) => {
    const span = await withServer(answerOk, async (serverPort) => serverSpanFor(await sendHead(serverPort, `GET /items?q=1 HTTP/1.1\r\nHost: ${host}`)));
    expect(span.attributes).toMatchObject({ 'url.scheme': 'http', 'server.address': address, 'server.port': port, 'url.path': '/items' });
  });

  it.each([
    ['no Host header (HTTP/1.0)', 'GET / HTTP/1.0'],
    ['a malformed Host header', 'GET / HTTP/1.1\r\nHost: evil.example/path@x'],
  ])('falls back to the local socket’s address and port for %s', async (_what, head) => {
    await withServer(answerOk, async (port) => {
      const span = await serverSpanFor(await sendHead(port, head));
      expect(span.attributes).toMatchObject({ 'url.scheme': 'http', 'server.address': '127.0.0.1', 'server.port': port });
    });
  });

  it('says url.scheme https for a request that arrived over TLS', async () => {
    const server = createHttpsServer(tls, answerOk) as unknown as Server;
    await withServer(server, async (port) => {
      const requestId = await new Promise<string>((resolve, reject) => {
        const request = httpsRequest({ host: '127.0.0.1', port, path: '/secure', ca: tls.cert, servername: 'localhost', headers: { host: `localhost:${port}` } }, (response) => {
          response.resume();
          response.on('end', () => resolve(String(response.headers['x-request-id'])));
        });
        request.on('error', reject);
        request.end();
      });
      const span = await serverSpanFor(requestId);
      expect(span.attributes).toMatchObject({ 'url.scheme': 'https', 'server.address': 'localhost', 'server.port': port, 'url.path': '/secure' });
    });
  });

  it('ignores X-Forwarded-Proto and X-Forwarded-Host from an untrusted peer', async () => {
    await withServer(answerOk, async (port) => {
      const span = await serverSpanFor(await sendHead(port, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: bank.example`));
      expect(span.attributes).toMatchObject({ 'url.scheme': 'http', 'server.address': '127.0.0.1', 'server.port': port });
    });
  });

  it('believes X-Forwarded-Proto and X-Forwarded-Host (the client-most value) from a trusted proxy', async () => {
    const trustInbound = (req: IncomingMessage): boolean => req.headers['x-proxy-secret'] === 'ours';
    const listener = httpRequestContext({ identify, trustInbound }, (_req, res) => res.end('ok'));
    await withServer(listener, async (port) => {
      const head = `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Proxy-Secret: ours\r\nX-Forwarded-Proto: https, http\r\nX-Forwarded-Host: shop.example, internal.lb`;
      const span = await serverSpanFor(await sendHead(port, head));
      expect(span.attributes).toMatchObject({ 'url.scheme': 'https', 'server.address': 'shop.example', 'server.port': 443 });
    });
  });
});
