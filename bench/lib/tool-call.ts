// The same tool call made three ways, for the tools and micro benches: a bare async
// function, a hand-written OpenTelemetry span with the GenAI attributes, and isotrace's
// audited dispatcher.execute.
import { randomUUID } from 'node:crypto';
import { SpanKind, type Tracer } from '@opentelemetry/api';
import { Tool, type ToolDispatcher } from 'isotrace/tools';
import type { Variant } from './harness.ts';

async function lookup(args: { q: string }): Promise<{ q: string }> {
  return args;
}

/** The tool the dispatcher runs: the same `lookup` as the other two variants. */
export class Lookup extends Tool<{ q: string }, { q: string }> {
  static override toolName = 'lookup';
  static override description = 'Looks things up';
  run(args: { q: string }): Promise<{ q: string }> {
    return lookup(args);
  }
}

/** Bare, hand-written span, dispatcher — in that order. Run them inside the dispatcher's request. */
export function toolCallVariants(tracer: Tracer, dispatcher: ToolDispatcher): [Variant, Variant, Variant] {
  const args = { q: 'lamp' };
  return [
    {
      name: 'bare async call',
      run: async (n) => {
        for (let i = 0; i < n; i++) await lookup(args);
      },
    },
    {
      name: 'hand-written OpenTelemetry span (same GenAI attributes)',
      run: async (n) => {
        for (let i = 0; i < n; i++) {
          const attributes = { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup', 'gen_ai.tool.call.id': `call_${randomUUID()}` };
          await tracer.startActiveSpan('execute_tool lookup', { kind: SpanKind.INTERNAL, attributes }, async (span) => {
            try {
              return await lookup(args);
            } finally {
              span.end();
            }
          });
        }
      },
    },
    {
      name: 'isotrace dispatcher.execute (4 audits at start and end)',
      run: async (n) => {
        for (let i = 0; i < n; i++) await dispatcher.execute('lookup', args);
      },
    },
  ];
}
