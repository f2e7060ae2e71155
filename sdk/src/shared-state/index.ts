/** `isotrace/shared-state`: per-(tenant, user) state and its stores. */
export { MemoryStore } from './internal/memory-store.js';
export type { MemoryStoreOptions } from './internal/memory-store.js';
export { RedisStore } from './internal/redis-store.js';
export type { RedisStoreClient, RedisStoreOptions } from './internal/redis-store.js';
export type { JsonValue, SetOptions, SharedState, SharedStateScope, SharedStateStore } from './types.js';
export { SharedStateConflictError, SharedStateUnavailableError, SharedStateValueError } from '../errors/errors.js';
