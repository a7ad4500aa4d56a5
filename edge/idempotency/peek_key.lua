--[[
  Read-only: what a request with this Idempotency-Key would find, without
  claiming it. For a route that writes its record in the same script as its
  effect (enqueue_keyed.lua) and refused the request before that script ran
  (a 4xx from validation): a key already used answers as the claim would
  have (the claim came first on every other route), so a reused key is still
  a 422 and a replay still a replay, whatever the body's validity.

  KEYS[1] idempotency record hash

  ARGV[1] request fingerprint (hex SHA-256)

  Returns
    { 0 }                   free: the request's own answer stands
    { -1, lock_left_ms }    in flight with the same fingerprint  (as claim_key.lua)
    { -2 }                  the key was used with a different fingerprint
    { 2, status, headers_json, body, body_encoding, task_id }
                            completed: replay
    { -3, status }          completed, but the response was too large to store
]]
-- @include "http_idempotency"
local outcome = idempotency_record_outcome(KEYS[1], ARGV[1])
if outcome then
  return outcome
end
return { 0 }
