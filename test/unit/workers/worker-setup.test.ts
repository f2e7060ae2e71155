// What every task carries for a thread's first task (workers/internal/worker-setup.ts): the
// submitting thread's settings and store channel, as one JSON string when JSON gives them back
// exactly, else as structured-clone data; either way the thread gets exactly what was sent.
import { describe, expect, it } from 'vitest';
import type { WorkerSettings } from '../../../sdk/src/tracing/internal/runtime.ts';
import { decodeSetup, SetupEncoder } from '../../../sdk/src/workers/internal/worker-setup.ts';

/** What a worker thread reads, after the structured clone of the hop. */
function received(settings: WorkerSettings, channel: string | undefined): unknown {
  return decodeSetup(structuredClone(new SetupEncoder().encode(settings, channel)));
}

describe('the worker setup a task carries', () => {
  const settings: WorkerSettings = { serviceName: 'api', audit: 'throw', recordToolArguments: true };

  it('plain settings and the store channel travel as one string and arrive as they were', () => {
    const setup = new SetupEncoder().encode(settings, 'isotrace.shared-state.x');
    expect(typeof setup).toBe('string');
    expect(received(settings, 'isotrace.shared-state.x')).toEqual([settings, 'isotrace.shared-state.x']);
    expect(received(settings, undefined)).toEqual([settings]);
  });

  it('a store recipe whose options JSON would change (a Date, a Map, an undefined field) arrives intact', () => {
    const recipe = { module: 'file:///stores/custom.js', factory: 'open', options: { since: new Date(5), shards: new Map([['a', 1]]), prefix: undefined } };
    const withRecipe: WorkerSettings = { ...settings, store: recipe };
    const [arrived] = received(withRecipe, undefined) as [WorkerSettings];
    expect(arrived).toEqual(withRecipe);
    const options = arrived.store!.options as typeof recipe.options;
    expect(options.since).toBeInstanceOf(Date);
    expect(options.shards).toBeInstanceOf(Map);
    expect(Object.hasOwn(options, 'prefix')).toBe(true);
  });

  it('is encoded again when the settings or the channel change (a restart), else reused', () => {
    const encoder = new SetupEncoder();
    const first = encoder.encode(settings, 'a');
    expect(encoder.encode(settings, 'a')).toBe(first);
    expect(decodeSetup(encoder.encode(settings, 'b'))).toEqual([settings, 'b']);
    const restarted = { ...settings, serviceName: 'api-2' };
    expect(decodeSetup(encoder.encode(restarted, 'b'))).toEqual([restarted, 'b']);
  });
});
