/**
 * How httpRequestContext() starts a request: what a sampler and span
 * processors see when the SERVER span starts (the method and `url.path`; the
 * other HTTP attributes are written right after, never over a processor's),
 * and that a synchronously identified request reaches its handler in the
 * listener's own call, without a promise turn of its own.
 */
import { describe, it, expect } from 'vitest';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { SpanKind, type Attributes, type Context } from '@opentelemetry/api';
import { AlwaysOnSampler, type ReadableSpan, type Sampler, type SamplingResult, type Span, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { httpRequestContext, type Identity } from 'isotrace/http';
import { useTestTracing } from 'isotrace/testing';
import { listen, rawRequest, waitFor } from '../../helpers/http.js';

/** What the sampler was asked about each SERVER span. */
const sampled: Attributes[] = [];
const sampler: Sampler = {
  shouldSample(context: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes): SamplingResult {
    if (kind === SpanKind.SERVER) sampled.push({ ...attributes });
    return new AlwaysOnSampler().shouldSample();
  },
  toString: () => 'RecordingSampler',
};

/** A host's processor that sets its own `url.scheme` on SERVER spans when they start (e.g. it knows the TLS terminator). */
const startedWith: Attributes[] = [];
const hostProcessor: SpanProcessor = {
  onStart(span: Span) {
    if (span.kind !== SpanKind.SERVER) return;
    startedWith.push({ ...span.attributes });
    span.setAttribute('url.scheme', 'https');
  },
  onEnd(_span: ReadableSpan) {},
  forceFlush: async () => {},
  shutdown: async () => {},
};

const kit = useTestTracing({ sampler, spanProcessors: [hostProcessor] });

function identify(): Identity {
  return { tenantId: 'acme', userId: 'u1' };
}

function serverSpanFor(requestId: string): Promise<ReadableSpan> {
  return waitFor(() => kit.spans().find((span) => span.kind === SpanKind.SERVER && span.attributes['isotrace.request_id'] === requestId), `SERVER span of ${requestId}`);
}

describe('the SERVER span at start', () => {
  it('shows the sampler and span processors the method and url.path, and ends with every HTTP attribute', async () => {
    const server = await listen(httpRequestContext({ identify }, (_req, res) => res.end('ok')));
    try {
      const response = await rawRequest(server.port, { path: '/items/7?q=lamp', headers: [['User-Agent', 'probe/1.0']] });
      const span = await serverSpanFor(response.headers['x-request-id']!);
      expect(sampled.at(-1)).toMatchObject({ 'http.request.method': 'GET', 'url.path': '/items/7' });
      expect(startedWith.at(-1)).toMatchObject({ 'http.request.method': 'GET', 'url.path': '/items/7' });
      expect(span.attributes).toMatchObject({
        'http.request.method': 'GET',
        'url.path': '/items/7',
        'server.address': '127.0.0.1',
        'server.port': server.port,
        'user_agent.original': 'probe/1.0',
        'network.peer.address': '127.0.0.1',
        'http.response.status_code': 200,
        'isotrace.tenant_id': 'acme',
        'user.id': 'u1',
      });
    } finally {
      await server.close();
    }
  });

  it('keeps an attribute a span processor set when the span started', async () => {
    const server = await listen(httpRequestContext({ identify }, (_req, res) => res.end('ok')));
    try {
      const response = await rawRequest(server.port);
      const span = await serverSpanFor(response.headers['x-request-id']!);
      expect(span.attributes['url.scheme']).toBe('https');
    } finally {
      await server.close();
    }
  });
});

describe('a synchronously identified request', () => {
  it('reaches its handler (and Express-style next()) within the listener call itself', async () => {
    const seen: Array<{ handler: boolean; next: boolean }> = [];
    let handlerRan = false;
    const withHandler = httpRequestContext({ identify }, (_req, res) => {
      handlerRan = true;
      res.end('ok');
    });
    const asMiddleware = httpRequestContext({ identify });
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      handlerRan = false;
      let nextRan = false;
      if (req.url === '/middleware') {
        asMiddleware(req, res, () => {
          nextRan = true;
          res.end('ok');
        });
      } else withHandler(req, res);
      seen.push({ handler: handlerRan, next: nextRan });
    });
    const listening = await listen(server);
    try {
      await rawRequest(listening.port, { path: '/handler' });
      await rawRequest(listening.port, { path: '/middleware' });
      expect(seen).toEqual([
        { handler: true, next: false },
        { handler: false, next: true },
      ]);
    } finally {
      await listening.close();
    }
  });
});
