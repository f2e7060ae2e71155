/**
 * One contract, two stores: the embedded MemoryStore and RedisStore on a
 * real redis-server of this file (started on a free 127.0.0.1 port).
 */
import { afterAll, beforeAll } from 'vitest';
import { randomUUID } from 'node:crypto';
import { MemoryStore, RedisStore } from 'isotrace/shared-state';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { sharedStateContract } from './contract.js';

let redis: TestRedis | undefined;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

sharedStateContract('MemoryStore', () => new MemoryStore());

sharedStateContract('RedisStore', () => {
  if (!redis) throw new Error('redis-server did not start (see the beforeAll error)');
  // A prefix per run: nothing of an earlier run can show up in keys().
  return new RedisStore({ url: redis.url, keyPrefix: `isotrace-test:${randomUUID()}` });
});
