import { describe, it, expect } from 'vitest';
import {
  getFromContext,
  getRequestContext,
  RequestContextMissingError,
  tryGetRequestContext,
  updateRequestContext,
  withRequestContext,
} from 'isotrace';
import { deferred } from '../../helpers/random.js';
import { useTestTracing } from 'isotrace/testing';

useTestTracing();

describe('getRequestContext', () => {
  it('returns the bound context, also after awaits and timers', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, async (ctx) => {
      expect(getRequestContext()).toBe(ctx);
      await new Promise((resolve) => setTimeout(resolve, 1));
      expect(getRequestContext()).toBe(ctx);
      await new Promise((resolve) => setImmediate(resolve));
      expect(getRequestContext().requestId).toBe(ctx.requestId);
    });
  });

  it('throws RequestContextMissingError outside a request, telling which wrapper to use', () => {
    let caught: unknown;
    try {
      getRequestContext();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RequestContextMissingError);
    expect((caught as Error).name).toBe('RequestContextMissingError');
    expect((caught as Error).message).toContain('withRequestContext');
    expect((caught as Error).message).toContain('getRequestContext()');
  });
});

describe('tryGetRequestContext', () => {
  it('returns undefined outside a request and the context inside', async () => {
    expect(tryGetRequestContext()).toBeUndefined();
    const inside = await withRequestContext({ tenantId: 't1', userId: 'u1' }, (ctx) => tryGetRequestContext() === ctx);
    expect(inside).toBe(true);
  });
});

describe('getFromContext', () => {
  it('returns a request value, else the fallback, else undefined', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1', values: { plan2: 'pro', zero: 0, nothing: null } }, () => {
      expect(getFromContext('plan2')).toBe('pro');
      expect(getFromContext('plan2', 'free')).toBe('pro');
      expect(getFromContext('absent', 'fallback')).toBe('fallback');
      expect(getFromContext('absent')).toBeUndefined();
      // Falsy values are values, not "unset".
      expect(getFromContext('zero', 5)).toBe(0);
      expect(getFromContext('nothing', 'fallback')).toBeNull();
    });
  });

  it('throws RequestContextMissingError outside a request, even with a fallback', () => {
    expect(() => getFromContext('anything', 'fallback')).toThrow(RequestContextMissingError);
    expect(() => getFromContext('anything')).toThrow(/withRequestContext/);
  });
});

describe('updateRequestContext', () => {
  it('merges values that the rest of the same request sees and returns the context', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1', values: { keep: 'me' } }, async (ctx) => {
      const returned = updateRequestContext({ step: 1, flag: true });
      expect(returned).toBe(ctx);
      await new Promise((resolve) => setTimeout(resolve, 1));
      expect(getFromContext('step')).toBe(1);
      expect(ctx.values()).toEqual({ keep: 'me', step: 1, flag: true });
      updateRequestContext({ step: 2 });
      await Promise.resolve();
      expect(getFromContext('step')).toBe(2);
    });
  });

  it('is not visible in a concurrent request', async () => {
    const aUpdated = deferred();
    const bRead = deferred();
    let seenByB: unknown = 'unset';
    await Promise.all([
      withRequestContext({ tenantId: 't1', userId: 'u1' }, async () => {
        updateRequestContext({ shared: 'from-a' });
        aUpdated.resolve();
        await bRead.promise;
        expect(getFromContext('shared')).toBe('from-a');
      }),
      withRequestContext({ tenantId: 't1', userId: 'u1' }, async () => {
        await aUpdated.promise;
        seenByB = getFromContext('shared');
        bRead.resolve();
      }),
    ]);
    expect(seenByB).toBeUndefined();
  });

  it('in a nested request does not reach the parent request', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1', values: { level: 'outer' } }, async () => {
      await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => {
        updateRequestContext({ level: 'inner', innerOnly: true });
        expect(getFromContext('level')).toBe('inner');
      });
      expect(getFromContext('level')).toBe('outer');
      expect(getFromContext('innerOnly')).toBeUndefined();
    });
  });

  it('throws RequestContextMissingError outside a request', () => {
    expect(() => updateRequestContext({ a: 1 })).toThrow(RequestContextMissingError);
  });

  it('throws a TypeError for values that are not an object', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => {
      expect(() => updateRequestContext(null as unknown as Record<string, unknown>)).toThrow(TypeError);
    });
  });
});
