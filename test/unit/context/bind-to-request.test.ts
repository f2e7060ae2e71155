import { describe, it, expect } from 'vitest';
import { EventEmitter } from 'node:events';
import { bindToRequest, getRequestContext, RequestContextMissingError, tryGetRequestContext, withRequestContext } from 'isotrace';
import { deferred } from '../../helpers/random.js';
import { useTestTracing } from 'isotrace/testing';

useTestTracing();

describe('bindToRequest', () => {
  it('restores the request in a listener fired by an emitter outside the request; an unbound listener has none', async () => {
    const emitter = new EventEmitter();
    let boundSaw: string | undefined = 'not called';
    let unboundSaw: string | undefined = 'not called';
    const requestId = await withRequestContext({ tenantId: 't1', userId: 'u1' }, (ctx) => {
      emitter.on('done', bindToRequest(() => (boundSaw = tryGetRequestContext()?.requestId)));
      emitter.on('done', () => (unboundSaw = tryGetRequestContext()?.requestId));
      return ctx.requestId;
    });
    emitter.emit('done');
    expect(boundSaw).toBe(requestId);
    expect(unboundSaw).toBeUndefined();
  });

  it('restores the request in a callback run by a timer scheduled outside the request', async () => {
    const callbacks: Array<() => string> = [];
    const requestId = await withRequestContext({ tenantId: 't1', userId: 'u1' }, (ctx) => {
      callbacks.push(bindToRequest(() => getRequestContext().requestId));
      return ctx.requestId;
    });
    const seen = await new Promise<string>((resolve, reject) =>
      setTimeout(() => {
        try {
          resolve(callbacks[0]!());
        } catch (error) {
          reject(error as Error);
        }
      }, 0),
    );
    expect(seen).toBe(requestId);
  });

  it('keeps the request it was bound in when called from inside another request', async () => {
    const handed = deferred<() => string>();
    const [, seenInB] = await Promise.all([
      withRequestContext({ tenantId: 'ta', userId: 'ua', requestId: 'req-a' }, () => {
        handed.resolve(bindToRequest(() => `${getRequestContext().requestId}/${getRequestContext().tenantId}`));
      }),
      withRequestContext({ tenantId: 'tb', userId: 'ub', requestId: 'req-b' }, async () => {
        const fromA = await handed.promise;
        return { bound: fromA(), own: getRequestContext().requestId };
      }),
    ]);
    expect(seenInB).toEqual({ bound: 'req-a/ta', own: 'req-b' });
  });

  it('passes arguments and this through and returns the result', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => {
      const bound = bindToRequest(function (this: { base: number }, a: number, b: number) {
        return this.base + a + b;
      });
      expect(bound.call({ base: 100 }, 1, 2)).toBe(103);
    });
  });

  it('throws RequestContextMissingError outside a request', () => {
    expect(() => bindToRequest(() => undefined)).toThrow(RequestContextMissingError);
    expect(() => bindToRequest(() => undefined)).toThrow(/bindToRequest/);
  });
});
