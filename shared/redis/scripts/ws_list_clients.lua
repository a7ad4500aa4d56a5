--[[
  Lists the registered live-feed clients that have not expired, oldest
  registration refresh first, after removing expired entries.

  KEYS[1] sorted set: client id → expiry ms
  KEYS[2] hash: client id → JSON info

  ARGV[1] most clients returned

  Returns a flat array: total, then per client id, expiry_ms, info.
          total counts every live client, also those past the limit.
]]
-- @include "now_ms"
local expiry_key = KEYS[1]
local info_key = KEYS[2]
local limit = tonumber(ARGV[1])

local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', expiry_key, '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', expiry_key, id)
  redis.call('HDEL', info_key, id)
end

local out = { redis.call('ZCARD', expiry_key) }
local live = redis.call('ZRANGEBYSCORE', expiry_key, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #live, 2 do
  out[#out + 1] = live[i]
  out[#out + 1] = live[i + 1]
  out[#out + 1] = redis.call('HGET', info_key, live[i]) or '{}'
end
return out
