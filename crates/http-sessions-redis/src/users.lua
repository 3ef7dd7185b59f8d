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
-- written. A binding older than the user's is refused; one never stored
-- (0) takes the user's.
--
-- raise: end_all's start. A new generation, past the current one and at
-- least ARGV[3] (past the time end_all began, in milliseconds, as a
-- binding's generation is the time its request began), so that no binding
-- of an older one is stored again, and the entries whose time has not
-- passed.
-- ARGV[3]  the floor of the new generation
-- ARGV[4]  how long, in seconds, the generation is remembered at least
--          (the layer's bound on a request under way when end_all began)
-- Returns {generation, id, deadline, id, deadline, ...}, as strings.

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
  local stamp = carried
  if carried == 0 then
    stamp = current
  elseif carried < current then
    return -1
  end
  redis.call('ZADD', key, ARGV[4], ARGV[3])
  -- 'gen' scores below zero: trimming from (0 never drops it.
  redis.call('ZREMRANGEBYSCORE', key, '(0', ARGV[2])
  -- -1 (no TTL) and -2 (no key) are below any TTL too.
  if redis.call('TTL', key) < tonumber(ARGV[5]) then
    redis.call('EXPIRE', key, ARGV[5])
  end
  return stamp
end

redis.call('ZREMRANGEBYSCORE', key, '(0', ARGV[2])
local raised = math.max(generation() + 1, tonumber(ARGV[3]))
redis.call('ZADD', key, -raised, 'gen')
-- The key's TTL covers the latest deadline of any session it held, so the
-- generation is remembered as long as a session it ends could have lived;
-- and at least as long as a login under way may take to commit, for a
-- user who had no session at all.
if redis.call('TTL', key) < tonumber(ARGV[4]) then
  redis.call('EXPIRE', key, ARGV[4])
end
local reply = {tostring(raised)}
local entries = redis.call('ZRANGEBYSCORE', key, '(' .. ARGV[2], '+inf', 'WITHSCORES')
for _, item in ipairs(entries) do
  reply[#reply + 1] = item
end
return reply
