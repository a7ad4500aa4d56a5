--[[
  Renews the in-flight lock of a request that is still running (heartbeat),
  so a slow request keeps its key while a crashed one loses it after one
  lock period. Fenced by the claim token.

  KEYS[1] idempotency record hash

  ARGV[1] claim token
  ARGV[2] lock duration ms

  Returns 1 renewed, -1 the claim was lost.
]]
local record_key = KEYS[1]
local token = ARGV[1]
local lock_ms = tonumber(ARGV[2])

if redis.call('HGET', record_key, 'token') ~= token then
  return -1
end
redis.call('PEXPIRE', record_key, lock_ms)
return 1
