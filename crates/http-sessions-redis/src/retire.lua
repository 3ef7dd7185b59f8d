-- Retires one renewed session in one atomic step: if the hash is a live
-- session, it is replaced whole by the marker of a renewed id, which loads
-- as renewed (and refuses every update) until the given time.
--
-- KEYS[1]  the session's hash
-- KEYS[2]  optional: the index of the user the request loaded the session
--          with, which loses its entry if the hash still names that user
-- ARGV[1]  now, Unix seconds (the application's clock, not the server's)
-- ARGV[2]  until when the id counts as renewed, Unix seconds
-- ARGV[3]  the marker's TTL in seconds, at least 1: garbage collection only
-- ARGV[4]  a random tag of this call
-- ARGV[5]  with KEYS[2]: that user
-- ARGV[6]  with KEYS[2]: the session id as the index names it
--
-- Returns 0 retired, 2 gone (no live session to retire).

local key = KEYS[1]

local expires = tonumber(redis.call('HGET', key, 'expires') or '')
if expires == nil then
  -- A call sent twice (its connection dropped before the reply) finds the
  -- marker it wrote itself: it did retire the session. Any other marker
  -- belongs to a renewal that got there first.
  if redis.call('HGET', key, 'tag') == ARGV[4] then
    return 0
  end
  return 2
end
if expires <= tonumber(ARGV[1]) then
  -- Expired by the application's clock: gone, and nothing to keep.
  redis.call('DEL', key)
  return 2
end

if KEYS[2] and redis.call('HGET', key, 'user') == ARGV[5] then
  redis.call('ZREM', KEYS[2], ARGV[6])
end
redis.call('DEL', key)
redis.call('HSET', key, 'renewed', ARGV[2], 'tag', ARGV[4])
redis.call('EXPIRE', key, ARGV[3])
return 0
