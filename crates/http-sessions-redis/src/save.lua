-- Saves one session's hash in one atomic step: creates it if absent, or
-- applies one request's changes to it if it is still alive; and, on a
-- single node, keeps the users' indexes with it.
--
-- KEYS[1]  the session's hash
-- KEYS[2]  optional, when ARGV[9] is 'a': the index of the user the
--          session is bound to after this save, which it joins (a create,
--          or an update that moves the binding); the binding's generation
--          is admitted against the user's there
-- KEYS[#KEYS]  optional, when ARGV[14] names a user: that user's index,
--          which the session leaves (an update that moves the binding away)
--
-- The common save, an update that only sets values (no value removed, the
-- session not cleared, the flash queue unchanged, the binding not moved),
-- has arguments of its own, as few as it needs, and one key:
--
-- ARGV[1]  'u'
-- ARGV[2]  now, Unix seconds (the application's clock, not the server's)
-- ARGV[3]  the TTL in seconds: garbage collection only, since loads judge
--          expiry from the expires field
-- ARGV[4]  the new expiry, Unix seconds
-- ARGV[5 .. #ARGV]             field, value pairs to set
--
-- Any other save:
--
-- ARGV[1]  'create' or 'update'
-- ARGV[2]  now, Unix seconds (for a create, its creation time)
-- ARGV[3]  the new expiry, Unix seconds
-- ARGV[4]  the TTL in seconds
-- ARGV[5]  creation time, Unix seconds (create only)
-- ARGV[6]  '1' to remove every session value before the changes (cleared)
-- ARGV[7]  flash: '' unchanged, 's' set to ARGV[8], 'd' delete
-- ARGV[8]  the flash queue's bytes when ARGV[7] is 's'
-- ARGV[9]  the 'gen' field: '' left alone; 'a' the generation ARGV[10]
--          the record carries (0: never stored) is admitted against the
--          user's in KEYS[2], and the result stamped; 's' ARGV[10] is
--          stamped as it is (on a Cluster, admitted first), 0 deleting it
-- ARGV[10] the generation
-- ARGV[11] the session id as the indexes name it
-- ARGV[12] the session's absolute deadline: its index entry's score
-- ARGV[13] the TTL in seconds that covers it: an index's TTL only grows
-- ARGV[14] the user the request loaded the session with, if it leaves
--          that user's index (KEYS[#KEYS]), else '': the entry goes only if
--          the hash still names that user
-- ARGV[15] n, the number of values set
-- ARGV[16 .. 15 + 2n]          field, value pairs to set: values, and
--                              'expiry', 'user', 'label'
-- ARGV[16 + 2n .. #ARGV]       fields to delete: values, and those three
--                              when they go back to their default
--
-- Returns 0 saved, 1 exists (create found the key taken: a session or a
-- renewed id's marker), 2 gone (update found no live session, a create
-- found the tombstone end_all left, or the binding is of an ended
-- generation), 3 saved and deleted because it held nothing.

local key = KEYS[1]

-- An update that found no live session: the answer is 'gone', and a hash
-- whose 'expires' has passed is deleted. Anything else stays as it is: the
-- marker of a renewed id, which must go on loading as renewed until its own
-- time, or a hash with an unreadable expiry, left to its TTL.
local function gone(key, expires)
  if expires ~= nil then
    redis.call('DEL', key)
  end
  return 2
end

-- The common save: three calls, each of which the general path below makes
-- too, and nothing else. Every call and every line here is time Redis
-- spends on this session alone, on every request that writes.
if ARGV[1] == 'u' then
  -- A session that is gone, or expired by the application's clock, stays
  -- gone: writing to it would bring it back with part of its state.
  local expires = tonumber(redis.call('HGET', key, 'expires') or '')
  if expires == nil or expires <= tonumber(ARGV[2]) then
    return gone(key, expires)
  end
  -- The caller sends few enough pairs for one unpack().
  redis.call('HSET', key, 'expires', unpack(ARGV, 4))
  redis.call('EXPIRE', key, ARGV[3])
  return 0
end

-- Fields to set, written with as few HSET calls as possible: every call
-- inside the script is time Redis spends on this session alone.
local fields = {}
local function set(field, value)
  fields[#fields + 1] = field
  fields[#fields + 1] = value
end

local previous_user = false
if ARGV[1] == 'create' then
  if redis.call('EXISTS', key) == 1 then
    -- end_all ended this id before its session landed: the login is over.
    if redis.call('HEXISTS', key, 'ended') == 1 then
      return 2
    end
    return 1
  end
  set('created', ARGV[5])
else
  -- A session that is gone, or expired by the application's clock, stays
  -- gone: writing to it would bring it back with part of its state.
  local expires = tonumber(redis.call('HGET', key, 'expires') or '')
  if expires == nil or expires <= tonumber(ARGV[2]) then
    return gone(key, expires)
  end
end
local leaving = ARGV[14] ~= '' and KEYS[#KEYS]
if leaving then
  previous_user = redis.call('HGET', key, 'user')
end

-- The binding's generation, admitted before anything is written: a
-- binding of a generation older than the user's was ended by end_all, and
-- must not come back. Absent, the user's generation is 1; a binding never
-- stored (0) takes the user's.
local index = ARGV[9] == 'a' and KEYS[2]
local generation = nil
if index then
  local current = 1
  local stored = redis.call('ZSCORE', index, 'gen')
  if stored then
    current = -tonumber(stored)
  end
  generation = tonumber(ARGV[10])
  if generation == 0 then
    generation = current
  elseif generation < current then
    return 2
  end
elseif ARGV[9] == 's' then
  generation = tonumber(ARGV[10])
end
if generation == 0 then
  redis.call('HDEL', key, 'gen')
elseif generation then
  set('gen', tostring(generation))
end

local cleared = ARGV[6] == '1'
if cleared then
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 2) == 'd:' then
      redis.call('HDEL', key, field)
    end
  end
end

local sets = tonumber(ARGV[15])
local i = 16
for _ = 1, sets do
  set(ARGV[i], ARGV[i + 1])
  i = i + 2
end
local removes = i <= #ARGV
while i <= #ARGV do
  redis.call('HDEL', key, ARGV[i])
  i = i + 1
end

if ARGV[7] == 's' then
  set('flash', ARGV[8])
elseif ARGV[7] == 'd' then
  redis.call('HDEL', key, 'flash')
end
set('expires', ARGV[3])

-- unpack() takes a bounded number of values: large sessions go in chunks.
local chunk = 1000
for first = 1, #fields, chunk do
  redis.call('HSET', key, unpack(fields, first, math.min(first + chunk - 1, #fields)))
end

-- Concurrent removals can empty a session that each request saw non-empty;
-- a session with no values and no flash messages is not kept. Only a save
-- that removed something can leave it empty.
if cleared or removes or ARGV[7] == 'd' then
  local meta = 1
  for _, field in ipairs({'created', 'expiry', 'user', 'label', 'gen'}) do
    meta = meta + redis.call('HEXISTS', key, field)
  end
  local flash = redis.call('HEXISTS', key, 'flash')
  if redis.call('HLEN', key) - meta - flash <= 0 and flash == 0 then
    redis.call('DEL', key)
    if leaving and previous_user == ARGV[14] then
      redis.call('ZREM', leaving, ARGV[11])
    end
    return 3
  end
end

-- The indexes, with the session: the new user's gains the entry (trimmed
-- of entries past their time, its TTL grown to cover the new one), the
-- old user's loses it if the hash was still theirs. 'gen' scores below
-- zero, so trimming from (0 never drops it.
if index then
  redis.call('ZADD', index, ARGV[12], ARGV[11])
  redis.call('ZREMRANGEBYSCORE', index, '(0', ARGV[2])
  -- -1 (no TTL) and -2 (no key) are below any TTL too.
  if redis.call('TTL', index) < tonumber(ARGV[13]) then
    redis.call('EXPIRE', index, ARGV[13])
  end
end
if leaving and previous_user == ARGV[14] then
  redis.call('ZREM', leaving, ARGV[11])
end

redis.call('EXPIRE', key, ARGV[4])
return 0
