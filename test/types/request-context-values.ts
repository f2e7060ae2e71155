/**
 * Negative type test of typed request values (checked by `tsc --noEmit`,
 * never run): augmenting RequestContextValues types `plan` everywhere a key
 * is used, while other keys stay usable as `unknown`.
 */
import { getFromContext, updateRequestContext, withRequestContext, type RequestContext } from 'isotrace';

declare module 'isotrace' {
  interface RequestContextValues {
    plan: 'free' | 'pro';
  }
}

export async function typedValues(): Promise<void> {
  await withRequestContext({ tenantId: 't1', userId: 'u1', values: { plan: 'pro' } }, (ctx: RequestContext) => {
    ctx.set('plan', 'free');
    const plan: 'free' | 'pro' | undefined = ctx.get('plan');
    const fromContext: 'free' | 'pro' | undefined = getFromContext('plan', 'free');
    updateRequestContext({ plan: 'pro' });
    // Keys nobody declared stay open, typed unknown.
    ctx.set('anything', { nested: true });
    const other: unknown = ctx.get('anything');
    void [plan, fromContext, other];

    // @ts-expect-error -- plan is 'free' | 'pro', not a number
    ctx.set('plan', 42);
    // @ts-expect-error -- not one of the declared plans
    ctx.set('plan', 'enterprise');
    // @ts-expect-error -- ctx.get('plan') is not a number
    const wrong: number | undefined = ctx.get('plan');
    // @ts-expect-error -- the fallback must be a plan
    getFromContext('plan', 42);
    // @ts-expect-error -- updateRequestContext checks declared keys too
    updateRequestContext({ plan: 7 });
    // @ts-expect-error -- init.values checks declared keys too
    void withRequestContext({ tenantId: 't1', userId: 'u1', values: { plan: 'gold' } }, () => undefined);
    void wrong;
  });
}
