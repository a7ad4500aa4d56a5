--[[
  Unregisters live-feed clients (their sockets closed).

  KEYS[1] sorted set: client id → expiry ms
  KEYS[2] hash: client id → JSON info

  ARGV[1] JSON array of client ids

  Returns the number of entries removed.
]]
local expiry_key = KEYS[1]
local info_key = KEYS[2]
local ids = cjson.decode(ARGV[1])

local removed = 0
for _, id in ipairs(ids) do
  removed = removed + redis.call('ZREM', expiry_key, id)
  redis.call('HDEL', info_key, id)
end
return removed
