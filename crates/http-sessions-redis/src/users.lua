-- A user's index of sessions: a sorted set of session ids (base64url), each
-- scored with the time, Unix seconds, until which its entry counts. Entries
-- whose time has passed are dropped by every call.
--
-- KEYS[1]  the user's index
-- ARGV[1]  'add' or 'list'
-- ARGV[2]  now, Unix seconds (the application's clock)
-- add:
-- ARGV[3]  the session id
-- ARGV[4]  its time, Unix seconds
-- ARGV[5]  the TTL in seconds that covers it: the key's TTL only grows
--
-- Returns 0 for add, and the ids for list.

local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[2])
if ARGV[1] == 'add' then
  redis.call('ZADD', key, ARGV[4], ARGV[3])
  -- -1 (no TTL) and -2 (no key) are below any TTL too.
  if redis.call('TTL', key) < tonumber(ARGV[5]) then
    redis.call('EXPIRE', key, ARGV[5])
  end
  return 0
end
return redis.call('ZRANGE', key, 0, -1)
