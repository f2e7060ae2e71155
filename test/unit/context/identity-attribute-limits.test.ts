// Identity attributes are written without the SDK's setAttribute(), so they must still obey the
// SDK's span limits exactly as setAttribute() would: counted against the attribute count limit
// (what passes it is dropped and counted), and truncated by a value length limit.
import { describe, expect, it } from 'vitest';
import { trace } from '@opentelemetry/api';
import { withRequestContext } from 'isotrace';
import { useTestTracing } from 'isotrace/testing';
import { createToolSystem } from 'isotrace/tools';
import { Echo, onlySpan } from '../tools/tool-test-helpers.ts';

// Read by the SDK when the test kit starts tracing (this file runs in its own worker).
process.env.OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT = '14';

const kit = useTestTracing();

describe('identity attributes under the SDK attribute count limit', () => {
  it('count toward the limit: a span keeps the identity, and the SDK drops and counts what passes the limit', async () => {
    const ctx = await withRequestContext({ tenantId: 't1', userId: 'u1', jobId: 'j1' }, (c) => {
      const span = trace.getTracer('lib').startSpan('busy');
      for (let i = 0; i < 12; i++) span.setAttribute(`app.attr_${i}`, i);
      span.end();
      return c;
    });
    const busy = onlySpan(kit, 'busy');
    expect(Object.keys(busy.attributes)).toHaveLength(14);
    expect(busy.droppedAttributesCount).toBe(3);
    expect(busy.attributes).toMatchObject({ 'isotrace.request_id': ctx.requestId, 'isotrace.tenant_id': 't1', 'user.id': 'u1', 'isotrace.job_id': 'j1', 'app.attr_8': 8 });
    expect(busy.attributes['app.attr_9']).toBeUndefined();
  });

  it('a span started near the limit gets the identity key by key until the limit, the rest dropped and counted', async () => {
    const ctx = await withRequestContext({ tenantId: 't1', userId: 'u1', jobId: 'j1' }, (c) => {
      const attributes = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`app.attr_${i}`, i]));
      trace.getTracer('lib').startSpan('crowded', { attributes }).end();
      return c;
    });
    const crowded = onlySpan(kit, 'crowded');
    expect(Object.keys(crowded.attributes)).toHaveLength(14);
    expect(crowded.attributes).toMatchObject({ 'isotrace.request_id': ctx.requestId, 'isotrace.correlation_id': ctx.correlationId, 'isotrace.tenant_id': 't1', 'user.id': 'u1' });
    expect(crowded.attributes['isotrace.job_id']).toBeUndefined();
    expect(crowded.droppedAttributesCount).toBe(1);
  });

  it('a tool span within the limit keeps every GenAI, audit and identity attribute', async () => {
    const ctx = await withRequestContext({ tenantId: 't1', userId: 'u1', jobId: 'j1' }, async (c) => {
      await createToolSystem([Echo]).dispatcher.execute('echo', 'x', { callId: 'call-1' });
      return c;
    });
    const tool = onlySpan(kit, 'execute_tool echo');
    expect(tool.droppedAttributesCount).toBe(0);
    expect(tool.attributes).toMatchObject({
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'echo',
      'gen_ai.tool.call.id': 'call-1',
      'gen_ai.tool.type': 'function',
      'isotrace.audit.result': 'pass',
      'isotrace.request_id': ctx.requestId,
      'isotrace.correlation_id': ctx.correlationId,
      'isotrace.tenant_id': 't1',
      'user.id': 'u1',
      'isotrace.job_id': 'j1',
    });
  });
});
