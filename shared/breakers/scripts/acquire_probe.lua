--[[
  Asks for the single probe of a breaker. An OPEN breaker whose reset timeout
  is over moves to HALF_OPEN here. In HALF_OPEN, exactly one caller
  cluster-wide holds the probe lease (a token with an expiry); a lease that
  expired belongs to a lost prober (crashed, partitioned) and is taken over.

  KEYS[1] breaker state hash
  KEYS[2] breaker failure-rate window hash

  ARGV[1] breaker name
  ARGV[2] lease token (random per attempt)
  ARGV[3] lease ms
  ARGV[4] event channel
  ARGV[5] instance id

  Returns { code, state, epoch, open_remaining_ms, probe_remaining_ms, consec, reason, by, trips }
          code 1 lease granted: run the probe, then end_probe.lua with the token
          code 2 no probe needed: the breaker is CLOSED or DISABLED, call normally
          code 0 refused: OPEN (not yet due), FORCED_OPEN, or another live lease
]]
-- @include "now_ms"
-- @include "breaker_state"
local state_key = KEYS[1]
local window_key = KEYS[2]
local name = ARGV[1]
local token = ARGV[2]
local lease_ms = tonumber(ARGV[3])
local channel = ARGV[4]
local instance = ARGV[5]

local now = now_ms()
local st = br_load(state_key, now)
if st.state == 'closed' or st.state == 'disabled' then
  return br_reply(2, st, now)
end
if st.state == 'open' and now >= st.open_until then
  br_transition(state_key, window_key, st, 'half_open', now, 0, 'reset_timeout', name, instance, channel)
end
if st.state ~= 'half_open' then
  return br_reply(0, st, now)
end
if st.probe_token ~= '' and st.probe_until > now then
  return br_reply(0, st, now)
end
if st.probe_token ~= '' then
  redis.call('HINCRBY', state_key, 'lost_probes', 1)
end
st.probe_token = token
st.probe_until = now + lease_ms
redis.call('HSET', state_key, 'probe_token', token, 'probe_until', st.probe_until, 'probe_by', instance)
redis.call('HINCRBY', state_key, 'probes', 1)
redis.call('PUBLISH', channel, cjson.encode({ t = 'probe', name = name, epoch = st.epoch, probe_ms = lease_ms,
  by = instance }))
return br_reply(1, st, now)
