--[[
  Ends the lock of a request whose response is too large to store: the
  record stays (same TTL as a stored response) as "done, not replayable", so
  a retry is told so instead of running the write a second time or getting
  a partial body. Fenced like complete_key.lua.

  KEYS[1] idempotency record hash

  ARGV[1] claim token
  ARGV[2] how long the record is kept, ms
  ARGV[3] HTTP status of the first response

  Returns 1 sealed, -1 the claim was lost (lock lapsed or key re-claimed).
]]
local record_key = KEYS[1]
local token = ARGV[1]
local ttl_ms = tonumber(ARGV[2])
local status = ARGV[3]

if redis.call('HGET', record_key, 'token') ~= token then
  return -1
end
redis.call('HSET', record_key, 'state', 'unreplayable', 'status', status)
redis.call('HDEL', record_key, 'token')
redis.call('PEXPIRE', record_key, ttl_ms)
return 1
