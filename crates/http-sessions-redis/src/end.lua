-- Ends sessions of one user, checking each session's own hash at the
-- moment it ends it: a session bound to another user, or to a newer
-- generation, is never ended, whatever an index entry says.
--
-- ARGV[1]  'end', 'delete', 'all' (single node) or 'one' (Cluster)
-- ARGV[2]  the user
-- ARGV[3]  now, Unix seconds (the application's clock)
--
-- end: one session, if it is the user's. KEYS[1] the session's hash,
-- KEYS[2] optional, the user's index, which loses the entry.
-- ARGV[4]  the session id as the index names it
-- Returns 1 if a live session ended, else 0.
--
-- delete: whatever is under KEYS[1]; KEYS[2], the index of the user
-- ARGV[2], loses the entry if the hash names that user. ARGV[4] the id.
-- Returns 0.
--
-- all: end_all's second step on a single node. KEYS[1] the user's index,
-- KEYS[2 ..] the listed sessions' hashes.
-- ARGV[4]  the user's new generation
-- ARGV[5]  k > 1 if KEYS[k] is the session to keep (restamped with the
--          new generation), else 0
-- ARGV[6 ..] the ids, as the index names them, of KEYS[2 ..]
-- Returns how many live sessions ended.
--
-- one: end_all's second step on a Cluster, one session. KEYS[1] its hash.
-- ARGV[4]  the user's new generation
-- ARGV[5]  '1' if it is the session to keep
-- ARGV[6]  its entry's score (its absolute deadline), Unix seconds
-- ARGV[7]  the TTL in seconds until then
-- A session of the user of an older generation is replaced by a
-- tombstone, and so is nothing at all: a create that lands later (a login
-- whose entry was written before end_all started, or a create sent twice)
-- then finds it and is refused. Anything else is left alone.
-- Returns 1 if a live session ended, 2 if the entry still names a session
-- of the user's (kept, or newer), else 0.

local mode = ARGV[1]
local user = ARGV[2]
local now = tonumber(ARGV[3])

-- The hash's expires (a number, or nil for no session), user and gen.
local function read(key)
  local f = redis.call('HMGET', key, 'expires', 'user', 'gen')
  return tonumber(f[1] or ''), f[2], tonumber(f[3] or '') or 0
end

if mode == 'end' then
  local expires, owner = read(KEYS[1])
  if owner ~= user then
    return 0
  end
  redis.call('DEL', KEYS[1])
  if KEYS[2] then
    redis.call('ZREM', KEYS[2], ARGV[4])
  end
  if expires ~= nil and expires > now then
    return 1
  end
  return 0
end

if mode == 'delete' then
  if redis.call('HGET', KEYS[1], 'user') == user then
    redis.call('ZREM', KEYS[2], ARGV[4])
  end
  redis.call('DEL', KEYS[1])
  return 0
end

local raised = tonumber(ARGV[4])

if mode == 'all' then
  local keep = tonumber(ARGV[5])
  local ended = 0
  for k = 2, #KEYS do
    local key = KEYS[k]
    local expires, owner, generation = read(key)
    local stays = false
    if owner == user and expires ~= nil then
      if k == keep then
        redis.call('HSET', key, 'gen', ARGV[4])
        stays = true
      elseif generation < raised then
        redis.call('DEL', key)
        if expires > now then
          ended = ended + 1
        end
      else
        stays = true
      end
    end
    -- Anything but a session of the user's is a stale entry.
    if not stays then
      redis.call('ZREM', KEYS[1], ARGV[4 + k])
    end
  end
  return ended
end

-- 'one'
local key = KEYS[1]
local expires, owner, generation = read(key)
if owner == user and expires ~= nil then
  if ARGV[5] == '1' then
    redis.call('HSET', key, 'gen', ARGV[4])
    return 2
  end
  if generation >= raised then
    return 2
  end
  redis.call('DEL', key)
  redis.call('HSET', key, 'ended', ARGV[6])
  redis.call('EXPIRE', key, ARGV[7])
  if expires > now then
    return 1
  end
  return 0
end
if redis.call('EXISTS', key) == 0 then
  redis.call('HSET', key, 'ended', ARGV[6])
  redis.call('EXPIRE', key, ARGV[7])
end
return 0
