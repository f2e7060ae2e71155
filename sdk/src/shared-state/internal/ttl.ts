import { SharedStateValueError } from '../../errors/errors.js';

/**
 * The longest TTL a store accepts: Number.MAX_SAFE_INTEGER ms (about 285,000
 * years). Larger numbers are not exact integers in JavaScript, and Redis
 * refuses an expiry past 2^63 - 1 ms from now.
 */
export const MAX_TTL_MS = Number.MAX_SAFE_INTEGER;

/**
 * Checks a `ttlMs` option: undefined (no TTL), or a positive number of ms up
 * to MAX_TTL_MS. Throws SharedStateValueError naming `ttlMs`, so a TTL the
 * store cannot hold is the caller's error, never a store outage.
 */
export function checkTtlMs(ttlMs: unknown): number | undefined {
  if (ttlMs === undefined) return undefined;
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TTL_MS) {
    throw new SharedStateValueError(
      `SharedState option ttlMs must be a positive number of milliseconds, at most ${MAX_TTL_MS} (Number.MAX_SAFE_INTEGER); got ${typeof ttlMs === 'number' ? String(ttlMs) : typeof ttlMs}. Leave it out for no expiry.`,
    );
  }
  return ttlMs;
}
