--[[
  Ends the probe of a HALF_OPEN breaker: a failure re-opens it, enough
  successes in a row (success_threshold) close it, "release" just frees the
  lease (the probe said nothing, e.g. a 429). Only the lease holder's token
  counts: a prober whose lease expired and was taken over is ignored.

  KEYS[1] breaker state hash
  KEYS[2] breaker failure-rate window hash

  ARGV[1] breaker name
  ARGV[2] lease token
  ARGV[3] outcome: "success", "failure" or "release"
  ARGV[4] success threshold
  ARGV[5] reset timeout ms
  ARGV[6] event channel
  ARGV[7] instance id

  Returns { code, state, epoch, open_remaining_ms, probe_remaining_ms, consec, reason, by, trips }
          code 1 recorded, 0 stale token (not HALF_OPEN, or the lease is someone else's)
]]
-- @include "now_ms"
-- @include "breaker_state"
local state_key = KEYS[1]
local window_key = KEYS[2]
local name = ARGV[1]
local token = ARGV[2]
local outcome = ARGV[3]
local threshold = tonumber(ARGV[4])
local reset_ms = tonumber(ARGV[5])
local channel = ARGV[6]
local instance = ARGV[7]

local now = now_ms()
local st = br_load(state_key, now)
if st.state ~= 'half_open' or st.probe_token ~= token then
  return br_reply(0, st, now)
end

local function free_lease()
  st.probe_token = ''
  st.probe_until = 0
  redis.call('HSET', state_key, 'probe_token', '', 'probe_until', 0, 'hp_ok', st.hp_ok)
  redis.call('PUBLISH', channel, cjson.encode({ t = 'probe', name = name, epoch = st.epoch, probe_ms = -1,
    by = instance }))
end

if outcome == 'failure' then
  br_transition(state_key, window_key, st, 'open', now, reset_ms, 'probe_failed', name, instance, channel)
elseif outcome == 'success' then
  st.hp_ok = st.hp_ok + 1
  if st.hp_ok >= threshold then
    br_transition(state_key, window_key, st, 'closed', now, 0, 'probe_succeeded', name, instance, channel)
  else
    free_lease()
  end
else
  free_lease()
end
return br_reply(1, st, now)
