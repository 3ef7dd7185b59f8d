-- A user's index of sessions, on its own key (the Cluster's first step of
-- a bound create or a re-binding, and end_all's first step everywhere).
-- The index is a sorted set of session ids (base64url), each scored with
-- the session's absolute deadline, and the member 'gen' scored with minus
-- the user's generation (absent: generation 1).
--
-- KEYS[1]  the user's index
-- ARGV[1]  'admit' or 'raise'
-- ARGV[2]  now, Unix seconds (the application's clock)
--
-- admit: a binding joins the index, if its generation is not older than
-- the user's.
-- ARGV[3]  the session id
-- ARGV[4]  its absolute deadline, Unix seconds: the entry's score
-- ARGV[5]  the TTL in seconds that covers it: the key's TTL only grows
-- ARGV[6]  the generation the binding carries, 0 if never stored
-- Returns the generation to stamp on the session, or -1: refused, nothing
-- written.
--
-- raise: end_all's start. A new generation, so that no binding of an
-- older one is stored again, and the entries whose time has not passed.
-- Returns {generation, id, deadline, id, deadline, ...}, as strings; {1}
-- and nothing written for a user with no index (nothing to end, and no
-- binding of theirs to refuse).

local key = KEYS[1]

local function generation()
  local stored = redis.call('ZSCORE', key, 'gen')
  if stored then
    return -tonumber(stored)
  end
  return 1
end

if ARGV[1] == 'admit' then
  local current = generation()
  local carried = tonumber(ARGV[6])
  if carried ~= 0 and carried < current then
    return -1
  end
  if carried > current then
    redis.call('ZADD', key, -carried, 'gen')
    current = carried
  end
  redis.call('ZADD', key, ARGV[4], ARGV[3])
  -- 'gen' scores below zero: trimming from (0 never drops it.
  redis.call('ZREMRANGEBYSCORE', key, '(0', ARGV[2])
  -- -1 (no TTL) and -2 (no key) are below any TTL too.
  if redis.call('TTL', key) < tonumber(ARGV[5]) then
    redis.call('EXPIRE', key, ARGV[5])
  end
  return current
end

redis.call('ZREMRANGEBYSCORE', key, '(0', ARGV[2])
-- Also when trimming emptied it: a key made here would have no TTL.
if redis.call('EXISTS', key) == 0 then
  return {'1'}
end
local raised = generation() + 1
-- The key's TTL is left as it is: it covers the latest deadline of any
-- session it held, so the generation is remembered as long as a session
-- it ends could have lived.
redis.call('ZADD', key, -raised, 'gen')
local reply = {tostring(raised)}
local entries = redis.call('ZRANGEBYSCORE', key, '(' .. ARGV[2], '+inf', 'WITHSCORES')
for _, item in ipairs(entries) do
  reply[#reply + 1] = item
end
return reply
