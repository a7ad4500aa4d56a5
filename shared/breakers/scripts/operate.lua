--[[
  Operator actions: reset (→ CLOSED, counters cleared), force_open
  (→ FORCED_OPEN: every call refused until a reset) and disable (→ DISABLED:
  every call let through, nothing counted). And half_open, from the
  background probe (shared/breakers/background_probe.ts): an OPEN breaker
  whose downstream answered a cheap health check moves to HALF_OPEN before
  its reset timeout, so the next real call is the probe; in any other state
  it changes nothing (a FORCED_OPEN breaker stays the operator's).

  KEYS[1] breaker state hash
  KEYS[2] breaker failure-rate window hash

  ARGV[1] breaker name
  ARGV[2] action: "reset", "force_open", "disable" or "half_open"
  ARGV[3] event channel
  ARGV[4] instance id (or operator name)

  Returns { code, state, epoch, open_remaining_ms, probe_remaining_ms, consec, reason, by, trips }
          code 1 changed, 0 already in that state (a reset of a CLOSED
          breaker still clears its counters), -1 unknown action
]]
-- @include "now_ms"
-- @include "breaker_state"
local state_key = KEYS[1]
local window_key = KEYS[2]
local name = ARGV[1]
local action = ARGV[2]
local channel = ARGV[3]
local instance = ARGV[4]

local targets = { reset = 'closed', force_open = 'forced_open', disable = 'disabled', half_open = 'half_open' }
local to = targets[action]
local now = now_ms()
local st = br_load(state_key, now)
if to == nil then
  return br_reply(-1, st, now)
end
if action == 'half_open' then
  if st.state ~= 'open' then
    return br_reply(0, st, now)
  end
  br_transition(state_key, window_key, st, 'half_open', now, 0, 'probe_answered', name, instance, channel)
  return br_reply(1, st, now)
end
if st.state == to then
  if to == 'closed' then
    st.consec = 0
    redis.call('HSET', state_key, 'consec', 0)
    redis.call('DEL', window_key)
  end
  return br_reply(0, st, now)
end
br_transition(state_key, window_key, st, to, now, 0, 'operator_' .. action, name, instance, channel)
return br_reply(1, st, now)
