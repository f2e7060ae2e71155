// A tool span's call attributes are written without the SDK's setAttribute() where the span has
// room for them all; near the SDK's attribute count limit they go key by key, and what passes
// the limit is dropped and counted, as setAttribute() would.
import { describe, expect, it } from 'vitest';
import { withRequestContext } from 'isotrace';
import { useTestTracing } from 'isotrace/testing';
import { createToolSystem } from 'isotrace/tools';
import { Echo, onlySpan } from './tool-test-helpers.ts';

// Read by the SDK when the test kit starts tracing (this file runs in its own worker).
process.env.OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT = '9';

const kit = useTestTracing();

describe('tool span attributes near the SDK attribute count limit', () => {
  it('keeps the start attributes, the identity and the first call attributes; drops and counts the rest', async () => {
    const ctx = await withRequestContext({ tenantId: 't1', userId: 'u1', jobId: 'j1' }, async (c) => {
      await createToolSystem([Echo]).dispatcher.execute('echo', 'x', { callId: 'call-1' });
      return c;
    });
    const tool = onlySpan(kit, 'execute_tool echo');
    expect(Object.keys(tool.attributes)).toHaveLength(9);
    expect(tool.attributes).toMatchObject({
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'echo',
      'isotrace.request_id': ctx.requestId,
      'isotrace.tenant_id': 't1',
      'user.id': 'u1',
      'isotrace.job_id': 'j1',
      'isotrace.audit.result': 'pass',
    });
    expect(tool.attributes['gen_ai.tool.call.id']).toBeUndefined();
    expect(tool.droppedAttributesCount).toBe(3);
  });
});
