// A worker thread makes its spans without loading the OpenTelemetry SDK (see
// worker-tracer.ts): the spans it forwards must be what the SDK's tracer makes
// of the same calls, and a new thread's first task must load no SDK package.
import { trace, type Attributes } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withRequestContext } from 'isotrace';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createWorkerPool } from 'isotrace/workers';
import type { LoadedInWorker } from '../../fixtures/workers/loaded-packages-worker.ts';
import { runSpanScript, type ScriptObservations } from '../../fixtures/workers/span-script.ts';

const SCRIPT_WORKER = new URL('../../fixtures/workers/span-script-worker.ts', import.meta.url);
const LOADS_WORKER = new URL('../../fixtures/workers/loaded-packages-worker.ts', import.meta.url);
/** Spans and events the script gives no time: theirs is when they ran. */
const UNTIMED = new Set(['plain', 'with-attributes']);
const TIMED_SPANS = new Set(['script.timed', 'script.ends-before-start', 'script.child']);

/** A span as the comparison sees it: everything but ids, run times and the scope's name (which says which run made it). */
function comparable(span: ReadableSpan, all: readonly ReadableSpan[]): unknown {
  const parent = all.find((other) => other.spanContext().spanId === span.parentSpanContext?.spanId);
  return {
    name: span.name,
    kind: span.kind,
    parent: parent ? parent.name : span.parentSpanContext ? '(outside the script)' : '(root)',
    attributes: span.attributes,
    droppedAttributesCount: span.droppedAttributesCount,
    events: span.events.map((event) => ({
      name: event.name,
      attributes: withoutStack(event.attributes),
      droppedAttributesCount: event.droppedAttributesCount,
      time: UNTIMED.has(event.name) ? '(when it ran)' : event.time,
    })),
    droppedEventsCount: span.droppedEventsCount,
    links: span.links.map((link) => ({ traceId: link.context.traceId, spanId: link.context.spanId, traceFlags: link.context.traceFlags, attributes: link.attributes, droppedAttributesCount: link.droppedAttributesCount })),
    droppedLinksCount: span.droppedLinksCount,
    status: span.status,
    times: TIMED_SPANS.has(span.name) ? [span.startTime, span.endTime, span.duration] : '(when it ran)',
    scope: { version: span.instrumentationScope.version, schemaUrl: span.instrumentationScope.schemaUrl },
  };
}

/** A stack trace names the thread's own frames: its first line (type and message) is what both runs share. */
function withoutStack(attributes: Attributes | undefined): Attributes | undefined {
  const stack = attributes?.['exception.stacktrace'];
  return typeof stack === 'string' ? { ...attributes, 'exception.stacktrace': stack.split('\n')[0] } : attributes;
}

function scriptSpans(spans: readonly ReadableSpan[], scope: string): unknown[] {
  const mine = spans.filter((span) => span.instrumentationScope.name === scope);
  return mine.map((span) => comparable(span, mine)).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

describe('spans made in a worker thread', () => {
  let kit: TestTracing;

  beforeAll(async () => {
    kit = await setupTestTracing();
  });
  afterAll(() => kit?.shutdown());

  it("are what the OpenTelemetry SDK's tracer makes of the same calls (attributes, events, links, limits, status, names, times, overloads)", async () => {
    kit.reset();
    const pool = createWorkerPool({ filename: SCRIPT_WORKER, maxThreads: 1, minThreads: 0 });
    try {
      const { inMain, inWorker } = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async () => ({
        inMain: runSpanScript(trace.getTracerProvider().getTracer('span-script.main', '1.2.3', { schemaUrl: 'https://example.com/schema' })),
        inWorker: await pool.run<ScriptObservations>({}),
      }));
      expect(inWorker).toEqual(inMain);
      const spans = kit.spans();
      const main = scriptSpans(spans, 'span-script.main');
      // 16 recorded spans (the suppressed one is not): fewer means the script stopped early.
      expect(main).toHaveLength(16);
      expect(scriptSpans(spans, 'span-script')).toEqual(main);
    } finally {
      await pool.close();
    }
  });

  it("a new thread's first task loads no OpenTelemetry SDK package and no piscina pool code, yet traces the request", async () => {
    kit.reset();
    const pool = createWorkerPool({ filename: LOADS_WORKER, maxThreads: 1, minThreads: 0 });
    try {
      const seen = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => pool.run<LoadedInWorker>({}));
      expect(seen.tenantId).toBe('acme');
      const packages = new Set(seen.urls.map((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1]).filter((name) => name !== undefined));
      // The hook saw the thread load isotrace and the API: an empty list would prove nothing.
      expect(seen.urls.some((url) => /\/workers\/(?:internal\/)?[\w-]+\.[jt]s$/.test(url))).toBe(true);
      expect(packages).toContain('@opentelemetry/api');
      const heavy = ['@opentelemetry/sdk-trace', '@opentelemetry/sdk-trace-base', '@opentelemetry/resources', '@opentelemetry/core', '@opentelemetry/semantic-conventions', '@opentelemetry/sdk-node'];
      expect(heavy.filter((name) => packages.has(name))).toEqual([]);
      // piscina's worker side runs every thread (loaded before the worker file); its pool side is for the submitting thread.
      expect(seen.urls.filter((url) => /\/piscina\/dist\/(?:index|main)\.js$|\/piscina\/dist\/esm-wrapper\.mjs$/.test(url))).toEqual([]);
      const step = kit.spans().find((span) => span.name === 'first-task.step');
      expect(step?.attributes['isotrace.tenant_id']).toBe('acme');
      expect(step?.events.map((event) => event.name)).toEqual(['working']);
    } finally {
      await pool.close();
    }
  });
});
