import { createHash } from 'node:crypto';

/** A Lua script RedisStore runs with EVALSHA (EVAL when the server does not have it yet). */
export interface RedisScript {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): RedisScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

// Every write keeps its scope's index (a Redis set of the encoded keys of the
// scope, so keys() costs what the scope holds, not a SCAN of the keyspace) in
// step, in the same script. Keys whose TTL passes stay in the index until
// keys() or a later write prunes them, so the index:
// - lives at least as long as every value it lists (no TTL while any value
//   has none, else the longest TTL), and disappears with the last of them;
// - loses two random members whose value is gone on every write, so a scope
//   that keeps writing new expiring keys keeps a bounded index without ever
//   calling keys().
// Shared by the write scripts: KEYS[1] value, KEYS[2] index; `member` is the
// encoded key, `scopePrefix` what turns a member back into its value key.
const INDEX = `
local function index(member, scopePrefix)
  local indexTtl = redis.call('PTTL', KEYS[2])
  redis.call('SADD', KEYS[2], member)
  local valueTtl = redis.call('PTTL', KEYS[1])
  if valueTtl < 0 then
    if indexTtl >= 0 then redis.call('PERSIST', KEYS[2]) end
  elseif indexTtl == -2 or (indexTtl >= 0 and indexTtl < valueTtl) then
    redis.call('PEXPIRE', KEYS[2], valueTtl)
  end
  for _, other in ipairs(redis.call('SRANDMEMBER', KEYS[2], 2)) do
    if redis.call('EXISTS', scopePrefix .. other) == 0 then redis.call('SREM', KEYS[2], other) end
  end
end
`;

/**
 * Writes a value and indexes it. KEYS[1] value, KEYS[2] index; ARGV[1] JSON
 * text, ARGV[2] PX TTL or '' (none), ARGV[3] member, ARGV[4] scope prefix.
 */
export const SET_AND_INDEX = script(`${INDEX}
if ARGV[2] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
index(ARGV[3], ARGV[4])
return 1
`);

/**
 * Compare-and-set: writes ARGV[3] only when the value still holds what the
 * caller read (ARGV[1] = '1' and ARGV[2], or ARGV[1] = '0' for absent), and
 * indexes it. ARGV[4] is a PX TTL, or '' to keep the value's current TTL
 * (KEEPTTL); ARGV[5] member, ARGV[6] scope prefix. Returns {1} on success,
 * else {0, current} (or {0} when absent) to retry with.
 */
export const COMPARE_AND_SET = script(`${INDEX}
local current = redis.call('GET', KEYS[1])
local expected = ARGV[1] == '1' and ARGV[2] or false
if current == expected then
  if ARGV[4] == '' then
    redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
  else
    redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  end
  index(ARGV[5], ARGV[6])
  return {1}
end
if current == false then return {0} end
return {0, current}
`);

/** Deletes a value and unindexes it. KEYS[1] value, KEYS[2] index; ARGV[1] member. Returns how many values it deleted. */
export const DELETE_AND_UNINDEX = script(`
local deleted = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return deleted
`);

/**
 * Of the index members ARGV[i] (value key KEYS[i + 1]; KEYS[1] the index),
 * returns those whose value exists and removes the others from the index.
 * Atomic, so a value written meanwhile is never unindexed.
 */
export const LIVE_MEMBERS = script(`
local live = {}
for i, member in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    live[#live + 1] = member
  else
    redis.call('SREM', KEYS[1], member)
  end
end
return live
`);
