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
-- @include "http_idempotency"
local record_key = KEYS[1]
local fingerprint = ARGV[1]
local token = ARGV[2]
local lock_ms = tonumber(ARGV[3])
local scope = ARGV[4]
local idempotency_key = ARGV[5]

local outcome = idempotency_record_outcome(record_key, fingerprint)
if outcome then
  return outcome
end
idempotency_claim(record_key, fingerprint, token, lock_ms, scope, idempotency_key)
return { 1 }
