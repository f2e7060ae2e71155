/** Shared by the Fastify plugin tests: the app's auth and a real Fastify app listening on 127.0.0.1, port 0. */
import { once } from 'node:events';
import { connect, type AddressInfo } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Identity } from 'isotrace/fastify';

/** The app's auth: `authorization: Bearer <tenant>:<user>`; `x-auth: throw` makes it throw. */
export function identify(request: FastifyRequest): Identity | undefined {
  if (request.headers['x-auth'] === 'throw') throw new Error('auth backend down');
  const match = /^Bearer ([\w-]+):([\w-]+)$/.exec(request.headers.authorization ?? '');
  return match ? { tenantId: match[1]!, userId: match[2]! } : undefined;
}

export const auth = (tenant: string, user: string): Array<[string, string]> => [['authorization', `Bearer ${tenant}:${user}`]];

/** A listening Fastify app. */
export interface ListeningApp {
  readonly port: number;
  close(): Promise<void>;
}

/** Starts `app` on 127.0.0.1, port 0. */
export async function listenFastify(app: FastifyInstance): Promise<ListeningApp> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { port, close: () => app.close() };
}

/**
 * POSTs `body` the way large uploads arrive: headers with
 * `Expect: 100-continue` first, the body only after the server answered
 * `100 Continue`, so it reaches a request whose handling has already begun
 * (and Fastify reads it from the socket's own async context). Resolves to
 * the final response's status and body.
 */
export async function postAfterContinue(port: number, path: string, headers: ReadonlyArray<readonly [string, string]>, body: string): Promise<{ status: number; body: string }> {
  const head = [`POST ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close', 'Expect: 100-continue', `Content-Length: ${Buffer.byteLength(body)}`, ...headers.map(([name, value]) => `${name}: ${value}`)];
  const socket = connect(port, '127.0.0.1');
  let received = '';
  let bodySent = false;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    received += chunk;
    if (!bodySent && /^HTTP\/1\.1 100 /.test(received) && received.includes('\r\n\r\n')) {
      bodySent = true;
      socket.write(body);
    }
  });
  socket.write(`${head.join('\r\n')}\r\n\r\n`);
  await once(socket, 'close');
  if (!bodySent) throw new Error(`postAfterContinue: no 100 Continue before the response: ${JSON.stringify(received.slice(0, 200))}`);
  const final = received.slice(received.indexOf('\r\n\r\n') + 4);
  const headEnd = final.indexOf('\r\n\r\n');
  return { status: Number(final.split(' ')[1]), body: final.slice(headEnd + 4) };
}
