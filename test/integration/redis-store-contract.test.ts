/**
 * The SharedState contract on RedisStore, against a real redis-server of this
 * file (started on a free 127.0.0.1 port); the same suite runs on MemoryStore
 * in test/unit/shared-state/store-contract.test.ts.
 */
import { afterAll, beforeAll } from 'vitest';
import { randomUUID } from 'node:crypto';
import { RedisStore } from 'isotrace/shared-state';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { sharedStateContract } from '../unit/shared-state/contract.js';

let redis: TestRedis | undefined;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

sharedStateContract('RedisStore', () => {
  if (!redis) throw new Error('redis-server did not start (see the beforeAll error)');
  // A prefix per run: nothing of an earlier run can show up in keys().
  return new RedisStore({ url: redis.url, keyPrefix: `isotrace-test:${randomUUID()}` });
});
