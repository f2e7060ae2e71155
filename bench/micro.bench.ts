// Micro benchmarks, ns per operation, in one run: the building blocks (AsyncLocalStorage,
// OpenTelemetry context and spans, W3C baggage) next to the isotrace calls made of them.
// Targets (issue 15): withRequestContext ≤ 1.3x an OpenTelemetry context.with + span
// start/end; dispatcher.execute ≤ 1.2x a hand-written span with the same attributes.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { context, createContextKey, defaultTextMapGetter, defaultTextMapSetter, propagation, ROOT_CONTEXT, trace, type BaggageEntry } from '@opentelemetry/api';
import { W3CBaggagePropagator } from '@opentelemetry/core';
import { getRequestContext, startTracing, withRequestContext } from 'isotrace';
import { MemoryStore } from 'isotrace/shared-state';
import { createToolSystem } from 'isotrace/tools';
import { DiscardExporter } from './lib/discard-exporter.ts';
import { fmt, measure, pick, quickNote, type Variant, type VariantResult } from './lib/harness.ts';
import { table, writeSection } from './lib/report.ts';
import { Lookup, toolCallVariants } from './lib/tool-call.ts';

const SCALE = Number(process.env.BENCH_ITERATIONS_SCALE ?? 1);
const iterations = (full: number): number => Math.max(100, Math.round(pick(full, full / 5) * SCALE));
const ROUNDS = pick(9, 5);

const exporter = new DiscardExporter();
const tracing = await startTracing({ serviceName: 'bench-micro', exporter, instrumentHttp: false });
const tracer = trace.getTracer('bench');
const KEY = createContextKey('bench.value');
const als = new AsyncLocalStorage<{ value: number }>();
const identity = { tenantId: 'acme', userId: 'u1' };
const noop = async (): Promise<void> => {};

interface Group {
  title: string;
  results: VariantResult[];
  iterations: number;
}
const groups: Group[] = [];

async function group(title: string, n: number, variants: Variant[]): Promise<VariantResult[]> {
  const results = await measure(variants, { iterations: n, rounds: ROUNDS });
  groups.push({ title, results, iterations: n });
  return results;
}

// 1. Entering a scope: one async callback run in a new context each time.
const scopes = await group('Entering a scope (async callback, awaited)', iterations(20_000), [
  {
    name: 'AsyncLocalStorage.run + getStore',
    run: async (n) => {
      for (let i = 0; i < n; i++) await als.run({ value: i }, async () => als.getStore());
    },
  },
  {
    name: 'OpenTelemetry context.with (one value)',
    run: async (n) => {
      for (let i = 0; i < n; i++) await context.with(context.active().setValue(KEY, i), async () => context.active().getValue(KEY));
    },
  },
  {
    name: 'OpenTelemetry span start/end',
    run: (n) => {
      for (let i = 0; i < n; i++) tracer.startSpan('op').end();
    },
  },
  {
    name: 'OpenTelemetry context.with + span start/end',
    run: async (n) => {
      for (let i = 0; i < n; i++) {
        const span = tracer.startSpan('request');
        try {
          await context.with(trace.setSpan(context.active(), span), noop);
        } finally {
          span.end();
        }
      }
    },
  },
  {
    name: 'the same by hand: + UUID, 5 identity attributes, 3 baggage entries, context value',
    run: async (n) => {
      for (let i = 0; i < n; i++) {
        const requestId = randomUUID();
        const attributes = { 'isotrace.request_id': requestId, 'isotrace.correlation_id': requestId, 'isotrace.tenant_id': 'acme', 'user.id': 'u1', 'isotrace.request_span': true };
        const span = tracer.startSpan('request', { attributes });
        const baggage = propagation.createBaggage({ 'isotrace.correlation_id': { value: requestId }, 'isotrace.tenant_id': { value: 'acme' }, 'isotrace.user_id': { value: 'u1' } });
        const scope = propagation.setBaggage(trace.setSpan(context.active(), span).setValue(KEY, { requestId }), baggage);
        try {
          await context.with(scope, noop);
        } finally {
          span.end();
        }
      }
    },
  },
  {
    name: 'isotrace withRequestContext',
    run: async (n) => {
      for (let i = 0; i < n; i++) await withRequestContext(identity, noop);
    },
  },
]);

// 2. Reading the current request, and SharedState on the embedded MemoryStore.
const store = new MemoryStore();
const scope = { tenantId: 'acme', userId: 'u1' };
await withRequestContext({ ...identity, values: { plan: 'pro' } }, async (ctx) => {
  const state = ctx.sharedState;
  await state.set('counter', { n: 1 });
  await group('Inside a request: reading the context, SharedState on MemoryStore', iterations(50_000), [
    {
      name: 'AsyncLocalStorage getStore (outside any run)',
      run: (n) => {
        for (let i = 0; i < n; i++) als.getStore();
      },
    },
    {
      name: 'isotrace getRequestContext',
      run: (n) => {
        for (let i = 0; i < n; i++) getRequestContext();
      },
    },
    {
      name: 'MemoryStore get (store API, no scope checks)',
      run: async (n) => {
        for (let i = 0; i < n; i++) await store.get(scope, 'counter');
      },
    },
    {
      name: 'isotrace SharedState get',
      run: async (n) => {
        for (let i = 0; i < n; i++) await state.get('counter');
      },
    },
    {
      name: 'MemoryStore set (store API, no scope checks)',
      run: async (n) => {
        for (let i = 0; i < n; i++) await store.set(scope, 'counter', '{"n":1}');
      },
    },
    {
      name: 'isotrace SharedState set',
      run: async (n) => {
        for (let i = 0; i < n; i++) await state.set('counter', { n: 1 });
      },
    },
  ]);
});
await store.close();

// 3. A tool call: the same async function bare, in a hand-written span, through the dispatcher.
const tools = await withRequestContext(identity, async () => {
  const { dispatcher } = createToolSystem([Lookup]);
  return group('A tool call inside a request', iterations(20_000), toolCallVariants(tracer, dispatcher));
});

// 4. W3C baggage on the wire (the standard propagator isotrace uses): 4 and 64 entries.
const baggagePropagator = new W3CBaggagePropagator();
function baggageOf(entries: number): { ctx: ReturnType<typeof propagation.setBaggage>; header: Record<string, string> } {
  const members: Record<string, BaggageEntry> = {};
  for (let i = 0; i < entries; i++) members[`key${i}`] = { value: `value-${i}-${'x'.repeat(8)}` };
  const ctx = propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage(members));
  const header: Record<string, string> = {};
  baggagePropagator.inject(ctx, header, defaultTextMapSetter);
  return { ctx, header };
}
const baggageVariants = [4, 64].flatMap((entries): Variant[] => {
  const { ctx, header } = baggageOf(entries);
  return [
    {
      name: `inject, ${entries} entries`,
      run: (n) => {
        for (let i = 0; i < n; i++) baggagePropagator.inject(ctx, {}, defaultTextMapSetter);
      },
    },
    {
      name: `extract, ${entries} entries`,
      run: (n) => {
        for (let i = 0; i < n; i++) baggagePropagator.extract(ROOT_CONTEXT, header, defaultTextMapGetter);
      },
    },
  ];
});
await group('W3C baggage propagator', iterations(10_000), baggageVariants);

await tracing.shutdown();

const nsOf = (results: VariantResult[], prefix: string): number => results.find((r) => r.name.startsWith(prefix))!.nsPerOp;
const cpuOf = (results: VariantResult[], prefix: string): number => results.find((r) => r.name.startsWith(prefix))!.cpuNsPerOp;
const requestRatio = nsOf(scopes, 'isotrace withRequestContext') / nsOf(scopes, 'OpenTelemetry context.with + span');
const requestCpuRatio = cpuOf(scopes, 'isotrace withRequestContext') / cpuOf(scopes, 'OpenTelemetry context.with + span');
const requestToSameWork = nsOf(scopes, 'isotrace withRequestContext') / nsOf(scopes, 'the same by hand');
const toolRatio = nsOf(tools, 'isotrace dispatcher.execute') / nsOf(tools, 'hand-written');
const toolCpuRatio = cpuOf(tools, 'isotrace dispatcher.execute') / cpuOf(tools, 'hand-written');
const verdict = (ratio: number, limit: number): string => `${ratio <= limit ? 'met' : 'MISSED'} (${fmt(ratio)}x)`;

const body = groups
  .map(({ title, results, iterations: n }) => {
    const base = results[0]!.nsPerOp;
    return `### ${title}\n\n${table(
      ['operation', 'ns per op (median)', 'vs first row', 'CPU ns per op (median)'],
      results.map((r) => [r.name, fmt(r.nsPerOp), `${fmt(r.nsPerOp / base)}x`, fmt(r.cpuNsPerOp)]),
    )}\n\n${n.toLocaleString('en-US')} operations per round and variant, ${ROUNDS} rounds.`;
  })
  .join('\n\n');

writeSection(
  'micro',
  'Micro benchmarks: ns per operation',
  `${body}

Spans go through isotrace's pipeline (request-identity processor, batch processor) into a discarding exporter. CPU time is
process.cpuUsage() over the same rounds: on a busy machine it is the steadier figure.
withRequestContext costs ${fmt(requestToSameWork)}x the same work written by hand the plain OpenTelemetry way (a UUID, a span started with
the 5 identity attributes, 3 baggage entries, a context value). isotrace checks the identity once per request and writes it onto its spans
without the SDK validating it again (OpenTelemetry's SDK validates each attribute given at start twice, allocating as it goes), reads the
identity baggage from the request when something asks for it, and binds the span, the request and its baggage in one context object.
**Target: withRequestContext ≤ 1.3x OpenTelemetry context.with + span start/end — ${verdict(requestRatio, 1.3)}; CPU time ${fmt(requestCpuRatio)}x.**
**Target: dispatcher.execute ≤ 1.2x a hand-written span — ${verdict(toolRatio, 1.2)}; CPU time ${fmt(toolCpuRatio)}x.**${quickNote()}`,
);
