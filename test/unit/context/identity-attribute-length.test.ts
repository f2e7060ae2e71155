// With a value length limit the SDK truncates attribute values; the identity isotrace stamps
// goes through the same rule (never longer on a span than the SDK allows any value to be).
import { describe, expect, it } from 'vitest';
import { trace } from '@opentelemetry/api';
import { withRequestContext } from 'isotrace';
import { useTestTracing } from 'isotrace/testing';
import { onlySpan } from '../tools/tool-test-helpers.ts';

// Read by the SDK when the test kit starts tracing (this file runs in its own worker).
process.env.OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT = '6';

const kit = useTestTracing();

describe('identity attributes under the SDK value length limit', () => {
  it('are truncated like any attribute value, on the request span and on spans inside it', async () => {
    await withRequestContext({ tenantId: 'tenant-with-a-long-name', userId: 'user-with-a-long-name', name: 'req' }, () => {
      trace.getTracer('lib').startSpan('child').end();
    });
    for (const name of ['req', 'child']) {
      expect(onlySpan(kit, name).attributes).toMatchObject({ 'isotrace.tenant_id': 'tenant', 'user.id': 'user-w' });
      expect(String(onlySpan(kit, name).attributes['isotrace.request_id'])).toHaveLength(6);
    }
  });
});
