-- Saves one session's hash in one atomic step: creates it if absent, or
-- applies one request's changes to it if it is still alive, within the
-- session size bound; and, on a single node, keeps the users' indexes with
-- it.
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
-- ARGV[4]  the session size bound, bytes
-- ARGV[5]  the new expiry, Unix seconds
-- ARGV[6 .. #ARGV]             field, value pairs to set
--
-- Any other save:
--
-- ARGV[1]  'create' or 'update'
-- ARGV[2]  now, Unix seconds (for a create, its creation time)
-- ARGV[3]  the new expiry, Unix seconds
-- ARGV[4]  the TTL in seconds
-- ARGV[5]  creation time, Unix seconds (create only)
-- ARGV[6]  '1' to remove every session value before the changes (cleared)
-- ARGV[7]  update: the session size bound, bytes; create: the session's
--          size, but for its generation, which the script stamps
-- ARGV[8]  update: the flash queue's capacity, in messages
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
-- ARGV[15] n, the number of field, value pairs to set: values, 'expiry',
--          'user', 'label' (and, for a create, its flash messages)
-- ARGV[16] r, the number of fields to delete: values, and those three
--          when they go back to their default
-- ARGV[17] t, the number of flash messages taken (read or dropped)
-- ARGV[18] p, the number of flash messages pushed
-- ARGV[19 ..]  the n pairs, the r fields, the t message fields, then the
--          p message field, value pairs
--
-- The size ('sz') counts what the session size bound counts: a value its
-- key (without 'd:') and its bytes, a flash message its text and 8, the
-- user, the label and the expiry their text, a generation 8. A hash
-- without it (stored before it was kept) is measured once.
--
-- Returns 0 saved, 1 exists (create found the key taken: a session or a
-- renewed id's marker), 2 gone (update found no live session, a create
-- found the tombstone end_all left, or the binding is of an ended
-- generation), 3 saved and deleted because it held nothing; or the error
-- 'TOOLARGE <size>', and nothing written, if the update would leave the
-- session over the bound and larger than it was.

local key = KEYS[1]

-- The most bytes of text a flash queue holds (FLASH_MAX_BYTES).
local FLASH_MAX_BYTES = 2048

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

-- What a flash message stored as `n` bytes of MessagePack [level, text]
-- counts: its text and 8. The level is one byte, the array's header one,
-- the text's header one below 32 bytes of text, two below 256, else three.
local function flash_len(n)
  if n == 0 then
    return 0
  elseif n <= 34 then
    return n + 5
  elseif n <= 259 then
    return n + 4
  end
  return n + 3
end

-- What field `field` holding `n` bytes counts toward the size.
local function weight(field, n)
  local kind = string.sub(field, 1, 2)
  if kind == 'd:' then
    return #field - 2 + n
  elseif kind == 'f:' then
    return flash_len(n)
  end
  -- 'expiry', 'user', 'label': their text.
  return n
end

-- What field `field` counts now: 0 if absent (no stored value is empty).
local function held(field)
  local n = redis.call('HSTRLEN', key, field)
  if n == 0 then
    return 0
  end
  return weight(field, n)
end

-- The size of a hash stored without 'sz': every field counted once.
local function measure()
  local size = 0
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local field, value = all[i], all[i + 1]
    local kind = string.sub(field, 1, 2)
    if kind == 'd:' or kind == 'f:' or field == 'expiry' or field == 'user'
        or field == 'label' then
      size = size + weight(field, #value)
    elseif field == 'gen' then
      size = size + 8
    elseif field == 'flash' then
      for _, message in ipairs(cmsgpack.unpack(value)) do
        size = size + #message[2] + 8
      end
    end
  end
  return size
end

-- The common save: each call here the general path below makes too, one
-- HSTRLEN per value to keep the size, and nothing else. Every call and
-- every line here is time Redis spends on this session alone, on every
-- request that writes.
if ARGV[1] == 'u' then
  -- A session that is gone, or expired by the application's clock, stays
  -- gone: writing to it would bring it back with part of its state.
  local stored = redis.call('HMGET', key, 'expires', 'sz')
  local expires = tonumber(stored[1] or '')
  if expires == nil or expires <= tonumber(ARGV[2]) then
    return gone(key, expires)
  end
  local before = tonumber(stored[2] or '') or measure()
  local size = before
  -- Only values ('d:' fields) here, counted inline: a function call per
  -- value is time too.
  for i = 6, #ARGV, 2 do
    local field = ARGV[i]
    local n = redis.call('HSTRLEN', key, field)
    if n > 0 then
      size = size - n
    else
      size = size + #field - 2
    end
    size = size + #ARGV[i + 1]
  end
  if size > before and size > tonumber(ARGV[4]) then
    return redis.error_reply('TOOLARGE ' .. size)
  end
  -- The caller sends few enough pairs for one unpack().
  redis.call('HSET', key, 'sz', size, 'expires', unpack(ARGV, 5))
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

local create = ARGV[1] == 'create'
local previous_user = false
if create then
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

local sets = tonumber(ARGV[15])
local removes = tonumber(ARGV[16])
local taken = tonumber(ARGV[17])
local pushed = tonumber(ARGV[18])
local first_remove = 19 + 2 * sets
local first_taken = first_remove + removes
local first_pushed = first_taken + taken
local cleared = ARGV[6] == '1'

-- The size after the save, worked out before anything is written, so a
-- save over the bound writes nothing.
local before, size
local had_gen = generation ~= nil and redis.call('HEXISTS', key, 'gen') == 1
if create then
  before = 0
  size = tonumber(ARGV[7])
else
  before = tonumber(redis.call('HGET', key, 'sz') or '') or measure()
  size = before
end
if generation == 0 and had_gen then
  size = size - 8
elseif generation and generation ~= 0 and not had_gen then
  size = size + 8
end

-- The values a clear removes, all of them counted out.
local clearing = {}
if cleared then
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 2) == 'd:' then
      clearing[#clearing + 1] = field
      size = size - held(field)
    end
  end
end
-- A value the clear counted out already counts nothing more.
local function replaced(field)
  if cleared and string.sub(field, 1, 2) == 'd:' then
    return 0
  end
  return held(field)
end

-- A queue stored whole by an earlier release ('flash'): its messages are
-- numbered from 1, as the request that loaded it numbered them, and a
-- save that changes the queue turns it into a field per message.
local legacy = nil
if taken + pushed > 0 then
  local whole = redis.call('HGET', key, 'flash')
  if whole then
    legacy = cmsgpack.unpack(whole)
  end
end

if not create then
  for i = 19, first_remove - 1, 2 do
    size = size - replaced(ARGV[i]) + weight(ARGV[i], #ARGV[i + 1])
  end
  for i = first_remove, first_taken - 1 do
    size = size - replaced(ARGV[i])
  end
  for i = first_taken, first_pushed - 1 do
    local id = legacy and tonumber(string.sub(ARGV[i], 3), 16)
    if id and legacy[id] then
      size = size - #legacy[id][2] - 8
      legacy[id] = false
    else
      size = size - held(ARGV[i])
    end
  end
  for i = first_pushed, #ARGV, 2 do
    size = size - held(ARGV[i]) + weight(ARGV[i], #ARGV[i + 1])
  end
  if size > before and size > tonumber(ARGV[7]) then
    return redis.error_reply('TOOLARGE ' .. size)
  end
end

-- The writes.
if generation == 0 then
  redis.call('HDEL', key, 'gen')
elseif generation then
  set('gen', tostring(generation))
end
for _, field in ipairs(clearing) do
  redis.call('HDEL', key, field)
end
for i = 19, first_remove - 1, 2 do
  set(ARGV[i], ARGV[i + 1])
end
for i = first_remove, first_taken - 1 do
  redis.call('HDEL', key, ARGV[i])
end
if legacy then
  for id, message in ipairs(legacy) do
    if message then
      set(string.format('f:%016x', id), cmsgpack.pack(message))
    end
  end
  redis.call('HDEL', key, 'flash')
end
for i = first_taken, first_pushed - 1 do
  redis.call('HDEL', key, ARGV[i])
end
for i = first_pushed, #ARGV, 2 do
  set(ARGV[i], ARGV[i + 1])
end
set('expires', ARGV[3])

-- unpack() takes a bounded number of values: large sessions go in chunks.
local chunk = 1000
for first = 1, #fields, chunk do
  redis.call('HSET', key, unpack(fields, first, math.min(first + chunk - 1, #fields)))
end

-- Concurrent pushes can leave more messages than the queue holds: the
-- oldest (the lowest ids, which the zero-padded names sort by) go.
local dropped = false
if pushed > 0 then
  local queue = {}
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 2) == 'f:' then
      queue[#queue + 1] = field
    end
  end
  table.sort(queue)
  local lengths = {}
  local bytes = 0
  for i, field in ipairs(queue) do
    lengths[i] = held(field)
    bytes = bytes + lengths[i] - 8
  end
  local capacity = tonumber(ARGV[8])
  local i = 1
  while #queue - i + 1 > capacity or bytes > FLASH_MAX_BYTES do
    redis.call('HDEL', key, queue[i])
    size = size - lengths[i]
    bytes = bytes - lengths[i] + 8
    dropped = true
    i = i + 1
  end
end
redis.call('HSET', key, 'sz', size)

-- Concurrent removals can empty a session that each request saw non-empty;
-- a session with no values, no flash messages, no user, label or expiry of
-- its own is not kept. Only a save that removed something can leave it
-- empty.
if cleared or removes > 0 or taken > 0 or dropped then
  local meta = 2
  for _, field in ipairs({'created', 'gen'}) do
    meta = meta + redis.call('HEXISTS', key, field)
  end
  if redis.call('HLEN', key) - meta <= 0 then
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
