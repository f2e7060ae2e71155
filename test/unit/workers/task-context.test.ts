// The context a worker task's context is built on (workers/internal/task-context.ts): a chain of
// links instead of copied maps. It must answer exactly as the API's own context does, however
// many steps a task takes from it.
import { createContextKey, ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { TASK_ROOT } from '../../../sdk/src/workers/internal/task-context.ts';

const KEYS = Array.from({ length: 6 }, (_, i) => createContextKey(`task-context test key ${i}`));

type Step = { set: number; value: number } | { delete: number };

/** Applies the same steps to a context; returns every context along the way. */
function walk(root: Context, steps: readonly Step[]): Context[] {
  const seen = [root];
  for (const step of steps) {
    const ctx = seen[seen.length - 1]!;
    seen.push('set' in step ? ctx.setValue(KEYS[step.set]!, step.value) : ctx.deleteValue(KEYS[step.delete]!));
  }
  return seen;
}

function valuesOf(ctx: Context): unknown[] {
  return KEYS.map((key) => ctx.getValue(key));
}

describe('the task context', () => {
  it('answers as the API context for every context along 60 random steps (past the hand-over to the API context)', () => {
    for (let run = 0; run < 20; run++) {
      const steps: Step[] = Array.from({ length: 60 }, (_, i) => (Math.random() < 0.25 ? { delete: Math.floor(Math.random() * KEYS.length) } : { set: Math.floor(Math.random() * KEYS.length), value: i }));
      const expected = walk(ROOT_CONTEXT, steps).map(valuesOf);
      expect(walk(TASK_ROOT, steps).map(valuesOf)).toEqual(expected);
    }
  });

  it('is immutable: a step never changes the context it started from, nor its siblings', () => {
    const parent = TASK_ROOT.setValue(KEYS[0]!, 'parent');
    const child = parent.setValue(KEYS[0]!, 'child');
    const sibling = parent.deleteValue(KEYS[0]!);
    expect(parent.getValue(KEYS[0]!)).toBe('parent');
    expect(child.getValue(KEYS[0]!)).toBe('child');
    expect(sibling.getValue(KEYS[0]!)).toBeUndefined();
    expect(TASK_ROOT.getValue(KEYS[0]!)).toBeUndefined();
  });

  it('keeps a value that is itself undefined apart from a deleted one', () => {
    const ctx = TASK_ROOT.setValue(KEYS[1]!, 'set').setValue(KEYS[1]!, undefined);
    expect(ctx.getValue(KEYS[1]!)).toBeUndefined();
    expect(ctx.deleteValue(KEYS[1]!).setValue(KEYS[1]!, 'again').getValue(KEYS[1]!)).toBe('again');
  });
});
