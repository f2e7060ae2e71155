/** `isotrace/shared-state`: per-(tenant, user) state and its stores. */
export { MemoryStore } from './internal/memory-store.js';
export { RedisStore } from './internal/redis-store.js';
export type { JsonValue, MemoryStoreOptions, RedisStoreClient, RedisStoreOptions, SetOptions, SharedState, SharedStateScope, SharedStateStore, WorkerStoreRecipe } from './types.js';
export { SharedStateConflictError, SharedStateUnavailableError, SharedStateValueError } from '../errors/errors.js';
