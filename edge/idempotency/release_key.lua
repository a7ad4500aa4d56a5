--[[
  Gives up a claim without storing a response (the request was refused
  before it executed, or asked to be retried), so the next request with the
  key runs normally. Fenced by the claim token.

  KEYS[1] idempotency record hash

  ARGV[1] claim token

  Returns 1 released, -1 the claim was lost.
]]
local record_key = KEYS[1]
local token = ARGV[1]

if redis.call('HGET', record_key, 'token') ~= token then
  return -1
end
redis.call('DEL', record_key)
return 1
