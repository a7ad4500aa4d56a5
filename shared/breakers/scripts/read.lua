--[[
  Reads a breaker's state (creating it CLOSED when missing, so that its
  epoch is fixed from the first read on).

  KEYS[1] breaker state hash

  Returns { 1, state, epoch, open_remaining_ms, probe_remaining_ms, consec, reason, by, trips }
]]
-- @include "now_ms"
-- @include "breaker_state"
local state_key = KEYS[1]
local now = now_ms()
local st = br_load(state_key, now)
return br_reply(1, st, now)
