/**
 * propagateTo targets are checked at startTracing(): a target that could never
 * match (a wildcard other than a leading `*.` label, a host with a path, a URL
 * prefix with a query) is a TypeError naming the option, not a silent no-op.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { startTracing, type Tracing, type TracingOptions } from 'isotrace';

let running: Tracing | undefined;

afterEach(async () => {
  await running?.shutdown();
  running = undefined;
});

const start = async (propagateTo: TracingOptions['propagateTo']): Promise<Tracing> => {
  running = await startTracing({ serviceName: 'propagate-to-options', exporter: 'none', instrumentHttp: false, propagateTo });
  return running;
};

describe('propagateTo validation', () => {
  it.each([
    ['a wildcard inside a label', 'api*.internal'],
    ['a wildcard without a dot', '*internal'],
    ['a wildcard in the middle', 'a.*.internal'],
    ['a bare wildcard', '*'],
    ['a wildcard under an IP address', '*.0.0.1'],
    ['a wildcard in a URL prefix', 'http://*.internal/'],
    ['a host with a path but no scheme', 'inventory.internal/x'],
    ['a host with user info', 'user@inventory.internal'],
    ['a port out of range', 'inventory.internal:70000'],
    ['a URL prefix with a query', 'https://api.internal/v1?x=1'],
    ['a URL prefix with user info', 'https://user@api.internal/'],
  ])('rejects %s (%s) with a TypeError naming propagateTo', async (_what, target) => {
    const outcome = start([target]);
    await expect(outcome).rejects.toThrow(TypeError);
    await expect(outcome).rejects.toThrow(`'propagateTo'`);
    await expect(outcome).rejects.toThrow(JSON.stringify(target));
  });

  it.each(['*.internal', '*.internal:8443', 'api.internal', 'api.internal:443', '::1', '[::1]:9000', '127.0.0.1:8080', 'https://api.internal/v1', 'https://api.internal:8443/v1/'])(
    'accepts %s',
    async (target) => {
      await expect(start([target])).resolves.toBeDefined();
    },
  );
});
