--[[
  Claims an Idempotency-Key for the first request, or tells a retry what to
  do. While the first request is in flight the record expires with its lock
  (PEXPIRE lock_ms, renewed by extend_lock.lua), so an instance that crashes
  mid-request cannot wedge the key: once the lock lapses a retry claims it
  afresh. The fingerprint is compared first, so reusing a key for a
  different request is refused whether the first one is done or not.

  KEYS[1] idempotency record hash

  ARGV[1] request fingerprint (hex SHA-256)
  ARGV[2] claim token (random per request; fences complete, extend, release)
  ARGV[3] lock duration ms
  ARGV[4] scope (kept for diagnostics)
  ARGV[5] the Idempotency-Key as sent (kept for diagnostics)

  Returns
    { 1 }                   claimed: run the request
    { -1, lock_left_ms }    in flight with the same fingerprint
    { -2 }                  the key was used with a different fingerprint
    { 2, status, headers_json, body, body_encoding, task_id }
                            completed: replay (task_id is "" when none)
    { -3, status }          completed, but the response was too large to store
]]
local record_key = KEYS[1]
local fingerprint = ARGV[1]
local token = ARGV[2]
local lock_ms = tonumber(ARGV[3])
local scope = ARGV[4]
local idempotency_key = ARGV[5]

local f = redis.call('HMGET', record_key, 'state', 'fingerprint', 'status', 'headers', 'body', 'body_encoding',
  'task_id')
if not f[1] then
  redis.call('HSET', record_key, 'state', 'in_flight', 'fingerprint', fingerprint, 'token', token,
    'scope', scope, 'key', idempotency_key)
  redis.call('PEXPIRE', record_key, lock_ms)
  return { 1 }
end
if f[2] ~= fingerprint then
  return { -2 }
end
if f[1] == 'in_flight' then
  return { -1, redis.call('PTTL', record_key) }
end
if f[1] == 'unreplayable' then
  return { -3, tonumber(f[3]) }
end
return { 2, tonumber(f[3]), f[4], f[5], f[6], f[7] or '' }
