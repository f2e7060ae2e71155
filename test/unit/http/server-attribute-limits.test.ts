// The SERVER span's HTTP attributes are written without the SDK's setAttribute() once the span has
// started, so they must obey the SDK's span limits as setAttribute() would. Under a tight count
// limit the request's identity (what the audits compare) comes first: the extra HTTP attributes
// are what the SDK drops and counts.
import { describe, expect, it } from 'vitest';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { httpRequestContext, type Identity } from 'isotrace/http';
import { useTestTracing } from 'isotrace/testing';
import { listen, rawRequest, waitFor } from '../../helpers/http.js';

// Read by the SDK when the test kit starts tracing (this file runs in its own worker).
process.env.OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT = '10';

const kit = useTestTracing();

function identify(): Identity {
  return { tenantId: 'acme', userId: 'u1' };
}

async function serverSpanOf(path: string): Promise<ReadableSpan> {
  const server = await listen(httpRequestContext({ identify }, (_req, res) => res.end('ok')));
  try {
    const response = await rawRequest(server.port, { path, headers: [['User-Agent', 'probe/1.0']] });
    const requestId = response.headers['x-request-id'];
    return await waitFor(() => kit.spans().find((span) => span.kind === SpanKind.SERVER && span.attributes['isotrace.request_id'] === requestId), 'the SERVER span');
  } finally {
    await server.close();
  }
}

describe('SERVER span attributes under the SDK attribute count limit', () => {
  it('keep the request identity and the method and path; the SDK drops and counts the HTTP attributes past the limit', async () => {
    const span = await serverSpanOf('/items');
    expect(Object.keys(span.attributes)).toHaveLength(10);
    expect(span.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/items',
      'isotrace.request_span': true,
      'isotrace.tenant_id': 'acme',
      'user.id': 'u1',
    });
    expect(span.attributes['isotrace.request_id']).toEqual(expect.any(String));
    expect(span.attributes['isotrace.correlation_id']).toEqual(expect.any(String));
    // url.scheme, server.address and server.port fit; the user agent, peer address and status code are dropped.
    expect(span.droppedAttributesCount).toBe(3);
  });
});
