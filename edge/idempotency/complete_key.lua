--[[
  Stores the first request's response for replay and ends its lock. Fenced:
  only the request holding the current claim token may complete, so a
  request whose lock lapsed (and whose key a retry may have claimed since)
  cannot overwrite the newer claimant's record.

  KEYS[1] idempotency record hash

  ARGV[1] claim token
  ARGV[2] how long the response is replayed, ms
  ARGV[3] HTTP status
  ARGV[4] stored headers, JSON array of [name, value]
  ARGV[5] body (encoded as ARGV[6] says)
  ARGV[6] body encoding: "utf8" or "base64"
  ARGV[7] queued task id, "" when the response handed off no task

  Returns 1 stored, -1 the claim was lost (lock lapsed or key re-claimed).
]]
local record_key = KEYS[1]
local token = ARGV[1]
local ttl_ms = tonumber(ARGV[2])
local status = ARGV[3]
local headers = ARGV[4]
local body = ARGV[5]
local body_encoding = ARGV[6]
local task_id = ARGV[7]

if redis.call('HGET', record_key, 'token') ~= token then
  return -1
end
redis.call('HSET', record_key, 'state', 'done', 'status', status, 'headers', headers, 'body', body,
  'body_encoding', body_encoding)
if task_id ~= '' then
  redis.call('HSET', record_key, 'task_id', task_id)
end
redis.call('HDEL', record_key, 'token')
redis.call('PEXPIRE', record_key, ttl_ms)
return 1
