/**
 * An OTLP/HTTP (JSON) receiver on 127.0.0.1 that keeps every trace payload for
 * the demo's own audit and, when an upstream collector is given, forwards each
 * body to it unchanged. Both services export here, so the demo sees all spans
 * even with nothing else running.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { context } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import type { OtlpTracesJson } from 'isotrace/testing';
import { closeServer, listen } from '../shared/http.ts';

export interface OtlpRelay {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT / startTracing({ endpoint }). */
  readonly url: string;
  /** Every trace payload received so far. */
  readonly payloads: OtlpTracesJson[];
  /** Bodies the upstream refused or that could not reach it. */
  readonly forwardFailures: () => number;
  close(): Promise<void>;
}

export async function startOtlpRelay(upstream: string | undefined): Promise<OtlpRelay> {
  const payloads: OtlpTracesJson[] = [];
  const forwards = new Set<Promise<void>>();
  let failures = 0;
  const server = createServer((req, res) => {
    void readBody(req).then((body) => {
      if (req.url === '/v1/traces') {
        try {
          payloads.push(JSON.parse(body.toString('utf8')) as OtlpTracesJson);
        } catch {
          res.writeHead(400).end();
          return;
        }
      }
      if (upstream && req.url?.startsWith('/v1/')) {
        const forward = send(`${upstream.replace(/\/$/, '')}${req.url}`, body).catch(() => {
          failures++;
        });
        forwards.add(forward);
        void forward.finally(() => forwards.delete(forward));
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  const url = await listen(server, 0, '127.0.0.1');
  return {
    url,
    payloads,
    forwardFailures: () => failures,
    close: async () => {
      await Promise.allSettled([...forwards]);
      await closeServer(server);
    },
  };
}

/** POSTs with tracing suppressed: the relay's own calls must not become spans that come back to it. */
async function send(url: string, body: Buffer): Promise<void> {
  await context.with(suppressTracing(context.active()), async () => {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(10_000) });
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`upstream answered ${response.status}`);
  });
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
