// The cost of the callback-owner check (option auditCallbacks), ns per operation, side by side in
// one run: emitting to a listener the check wraps (added inside a request) against the same
// emit to an unwrapped listener (what every emit costs with the check off), and adding +
// removing a listener with the check's wrapper against Node's own methods.
import { EventEmitter } from 'node:events';
import { startTracing, withRequestContext } from 'isotrace';
import { DiscardExporter } from './lib/discard-exporter.ts';
import { fmt, measure, pick, quickNote, type Variant, type VariantResult } from './lib/harness.ts';
import { table, writeSection } from './lib/report.ts';

const SCALE = Number(process.env.BENCH_ITERATIONS_SCALE ?? 1);
const iterations = (full: number): number => Math.max(100, Math.round(pick(full, full / 5) * SCALE));
const ROUNDS = pick(9, 5);

// Node's own methods, taken before the check patches the prototypes: the "check off" baseline.
const nativeOn = EventEmitter.prototype.on;
const nativeAddEventListener = EventTarget.prototype.addEventListener;

const tracing = await startTracing({ serviceName: 'bench-callbacks', exporter: new DiscardExporter(), instrumentHttp: false, auditCallbacks: true });
const identity = { tenantId: 'acme', userId: 'u1' };
const event = new Event('x');
let heard = 0;
const listener = (): void => {
  heard++;
};

/** Runs `fn` inside one request (as a request handler does). */
function inRequest<T>(fn: () => T): Promise<T> {
  return withRequestContext(identity, fn);
}

interface Group {
  title: string;
  results: VariantResult[];
  iterations: number;
}
const groups: Group[] = [];

async function group(title: string, n: number, variants: Variant[]): Promise<void> {
  groups.push({ title, results: await measure(variants, { iterations: n, rounds: ROUNDS }), iterations: n });
}

await inRequest(async () => {
  // Listeners added in this request with the check on (wrapped) and with Node's own methods (what the check off leaves).
  const checked = new EventEmitter().on('x', listener);
  const unchecked = nativeOn.call(new EventEmitter(), 'x', listener);
  const checkedTarget = new EventTarget();
  checkedTarget.addEventListener('x', listener);
  const uncheckedTarget = new EventTarget();
  nativeAddEventListener.call(uncheckedTarget, 'x', listener);
  await group('EventEmitter emit() to one listener, inside the request that added it', iterations(1_000_000), [
    { name: 'check off (listener not wrapped)', run: (n) => emitN(unchecked, n) },
    { name: 'check on (listener wrapped, owner compared)', run: (n) => emitN(checked, n) },
  ]);
  await group('EventTarget dispatchEvent() to one listener, inside the request that added it', iterations(200_000), [
    { name: 'check off (listener not wrapped)', run: (n) => dispatchN(uncheckedTarget, n) },
    { name: 'check on (listener wrapped, owner compared)', run: (n) => dispatchN(checkedTarget, n) },
  ]);
  await group('EventEmitter on() + off() inside a request', iterations(200_000), [
    {
      name: "check off (Node's on)",
      run: (n) => {
        const emitter = new EventEmitter();
        for (let i = 0; i < n; i++) nativeOn.call(emitter, 'x', listener).off('x', listener);
      },
    },
    {
      name: 'check on (wrapped at on)',
      run: (n) => {
        const emitter = new EventEmitter();
        for (let i = 0; i < n; i++) emitter.on('x', listener).off('x', listener);
      },
    },
  ]);
});
await group('EventEmitter on() + off() outside any request (app start-up, app-wide buses)', iterations(200_000), [
  {
    name: "check off (Node's on)",
    run: (n) => {
      const emitter = new EventEmitter();
      for (let i = 0; i < n; i++) nativeOn.call(emitter, 'x', listener).off('x', listener);
    },
  },
  {
    name: 'check on (nothing to wrap)',
    run: (n) => {
      const emitter = new EventEmitter();
      for (let i = 0; i < n; i++) emitter.on('x', listener).off('x', listener);
    },
  },
]);
await tracing.shutdown();
if (heard === 0) throw new Error('no listener ran');

function emitN(emitter: EventEmitter, n: number): void {
  for (let i = 0; i < n; i++) emitter.emit('x');
}

function dispatchN(target: EventTarget, n: number): void {
  for (let i = 0; i < n; i++) target.dispatchEvent(event);
}

const body = groups
  .map(({ title, results, iterations: n }) => {
    const base = results[0]!;
    return `### ${title}\n\n${table(
      ['variant', 'ns/op', 'CPU ns/op', 'vs check off'],
      results.map((r) => [r.name, fmt(r.nsPerOp), fmt(r.cpuNsPerOp), `${fmt(r.nsPerOp / base.nsPerOp, 2)}x`]),
    )}\n\n${n.toLocaleString('en-US')} operations per round, ${ROUNDS} rounds.`;
  })
  .join('\n\n');
const summary = `The \`callback-owner\` check (\`auditCallbacks\`) wraps listeners added inside a request; a wrapped listener compares the running request with its owner before it runs. With \`{ sampleRate }\` only that share of listeners is wrapped; the rest cost what "check off" costs.\n\n${body}${quickNote()}`;
// BENCH_PRINT_ONLY=1 prints the section without writing docs/benchmarks.md.
if (process.env.BENCH_PRINT_ONLY === '1') console.log(summary);
else writeSection('callbacks', 'Callback-owner check (auditCallbacks)', summary);
