// In `audit: 'throw'` mode a refused event throws IsolationViolationError at the emit site, and is
// still not delivered.
import { describe, expect, it } from 'vitest';
import { getEventStream, IsolationViolationError, withRequestContext, type EventStream } from 'isotrace';
import { useTestTracing } from 'isotrace/testing';

const kit = useTestTracing({ audit: 'throw' });

describe("the event-owner check in audit: 'throw' mode", () => {
  it('throws IsolationViolationError naming the check; the owner’s own emit does not throw', async () => {
    let kept: EventStream | undefined;
    await withRequestContext({ tenantId: 'acme', userId: 'alice' }, () => {
      kept = getEventStream();
      expect(kept.emit({ type: 'own' })).toBe(false); // no connection: undelivered, not a violation
    });
    const error = await withRequestContext({ tenantId: 'globex', userId: 'bob' }, () => {
      try {
        kept!.emit({ type: 'from-bob' });
      } catch (thrown) {
        return thrown;
      }
      return undefined;
    });
    expect(error).toBeInstanceOf(IsolationViolationError);
    expect((error as IsolationViolationError).check).toBe('event-owner');
    expect(await kit.violationCount('event-owner')).toBe(1);
  });
});
