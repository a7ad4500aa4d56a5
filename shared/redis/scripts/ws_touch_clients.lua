--[[
  Registers or refreshes live-feed clients (client id → instance), each for
  `ttl_ms` from now, and drops every entry that expired: the clients of an
  instance that died without unregistering them disappear after one TTL.

  KEYS[1] sorted set: client id → expiry ms
  KEYS[2] hash: client id → JSON info

  ARGV[1] ttl in ms
  ARGV[2] JSON array of [client_id, info]: info is the JSON text to store, or ""
          to only extend an existing entry (an entry already gone stays gone)

  Returns {touched, expired}: entries written or extended, expired entries removed.
]]
-- @include "now_ms"
local expiry_key = KEYS[1]
local info_key = KEYS[2]
local ttl_ms = tonumber(ARGV[1])
local clients = cjson.decode(ARGV[2])

local now = now_ms()
local until_ms = now + ttl_ms
local touched = 0
for _, c in ipairs(clients) do
  local id, info = c[1], c[2]
  if info ~= '' then
    redis.call('ZADD', expiry_key, until_ms, id)
    redis.call('HSET', info_key, id, info)
    touched = touched + 1
  elseif redis.call('ZADD', expiry_key, 'XX', 'CH', until_ms, id) == 1 then
    touched = touched + 1
  end
end

local expired = redis.call('ZRANGEBYSCORE', expiry_key, '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', expiry_key, id)
  redis.call('HDEL', info_key, id)
end
return { touched, #expired }
