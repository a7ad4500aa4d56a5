--[[
  Stores the last good answer of a guarded read and keeps the breaker's
  cache bounded: the entry joins the breaker's index (a sorted set scored by
  store time), entries whose TTL has passed leave the index, and while the
  index holds more than the cap the least recently stored entries are
  deleted. Entry keys and the index share the breaker's hash tag, so the
  members deleted here live in the same cluster slot as KEYS.

  KEYS[1] the entry (string)
  KEYS[2] the breaker's index (sorted set: entry key → store time ms)

  ARGV[1] the answer (JSON text)
  ARGV[2] TTL ms
  ARGV[3] most entries kept for this breaker

  Returns the number of entries evicted (0 or more).
]]
local entry_key = KEYS[1]
local index_key = KEYS[2]
local value = ARGV[1]
local ttl_ms = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

redis.call('SET', entry_key, value, 'PX', ttl_ms)
redis.call('ZADD', index_key, now_ms, entry_key)
-- Expired entries are gone already; only their index members remain.
redis.call('ZREMRANGEBYSCORE', index_key, '-inf', now_ms - ttl_ms)
local evicted = 0
local over = redis.call('ZCARD', index_key) - cap
if over > 0 then
  local oldest = redis.call('ZPOPMIN', index_key, over)
  for i = 1, #oldest, 2 do
    redis.call('DEL', oldest[i])
    evicted = evicted + 1
  end
end
redis.call('PEXPIRE', index_key, ttl_ms)
return evicted
