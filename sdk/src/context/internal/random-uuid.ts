import { randomFillSync } from 'node:crypto';

/** Random bytes for 256 UUIDs, refilled when used up (crypto.randomUUID() batches its entropy the same way). */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let used = POOL_BYTES;

/** Two lowercase hex digits per byte value (a table: Number#toString(16) costs more than the rest of making an id). */
export const BYTE_HEX: readonly string[] = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));
/** The same digits as ASCII bytes: byte b is HEX_DIGITS[2b], HEX_DIGITS[2b + 1]. */
const HEX_DIGITS = Buffer.from(BYTE_HEX.join(''), 'latin1');
const text = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1');

/**
 * A random (version 4) UUID, as crypto.randomUUID() makes it, for about half
 * its cost: that one joins 20 short strings, which V8 keeps as a rope and
 * flattens again where the id is used (an attribute, a header, a message to
 * another thread). Every request and every tool call without a call id takes
 * one, so the difference is a few percent of a request's own cost.
 */
export function randomUuid(): string {
  if (used === POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  const start = used;
  used += 16;
  pool[start + 6] = (pool[start + 6]! & 0x0f) | 0x40; // version 4
  pool[start + 8] = (pool[start + 8]! & 0x3f) | 0x80; // variant 10
  let at = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) at++; // past a dash
    const byte = pool[start + i]!;
    text[at++] = HEX_DIGITS[2 * byte]!;
    text[at++] = HEX_DIGITS[2 * byte + 1]!;
  }
  return text.toString('latin1', 0, 36);
}
