/** The SharedState contract on the embedded MemoryStore (RedisStore: test/integration/redis-store-contract.test.ts). */
import { MemoryStore } from 'isotrace/shared-state';
import { sharedStateContract } from './contract.js';

sharedStateContract('MemoryStore', () => new MemoryStore());
