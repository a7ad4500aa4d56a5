--[[
  Applies one batch of CLOSED call outcomes from one instance and trips the
  breaker when a rule says so. Outcomes observed under another epoch (the
  breaker changed state since) are not counted.

  KEYS[1] breaker state hash
  KEYS[2] breaker failure-rate window hash (fields n:<bucket>, f:<bucket>)

  ARGV[1]  breaker name
  ARGV[2]  epoch the outcomes were observed in
  ARGV[3]  successes
  ARGV[4]  failures (slow calls included)
  ARGV[5]  lead: failures before the first success (all failures when no success)
  ARGV[6]  longest failure run after the first success
  ARGV[7]  tail: failures after the last success
  ARGV[8]  fail_max
  ARGV[9]  failure-rate threshold percent (0 = rule off)
  ARGV[10] failure-rate minimum calls in the window
  ARGV[11] failure-rate window ms
  ARGV[12] failure-rate bucket ms
  ARGV[13] reset timeout ms
  ARGV[14] event channel
  ARGV[15] instance id
  ARGV[16] adopt a local trip: open for this many ms (-1 = no; used after a Redis outage)

  Returns { code, state, epoch, open_remaining_ms, probe_remaining_ms, consec, reason, by, trips }
          code 1 counted, 2 counted and tripped (or local trip adopted),
          0 not counted: the breaker is not CLOSED or the epoch differs
]]
-- @include "now_ms"
-- @include "breaker_state"
local state_key = KEYS[1]
local window_key = KEYS[2]
local name = ARGV[1]
local epoch = tonumber(ARGV[2])
local successes = tonumber(ARGV[3])
local failures = tonumber(ARGV[4])
local lead = tonumber(ARGV[5])
local max_run = tonumber(ARGV[6])
local tail = tonumber(ARGV[7])
local fail_max = tonumber(ARGV[8])
local rate_pct = tonumber(ARGV[9])
local min_calls = tonumber(ARGV[10])
local window_ms = tonumber(ARGV[11])
local bucket_ms = tonumber(ARGV[12])
local reset_ms = tonumber(ARGV[13])
local channel = ARGV[14]
local instance = ARGV[15]
local adopt_ms = tonumber(ARGV[16])

local now = now_ms()
local st = br_load(state_key, now)
if st.state ~= 'closed' or st.epoch ~= epoch then
  return br_reply(0, st, now)
end

if adopt_ms >= 0 then
  br_transition(state_key, window_key, st, 'open', now, adopt_ms, 'local_trip', name, instance, channel)
  return br_reply(2, st, now)
end

redis.call('HINCRBY', state_key, 'calls', successes + failures)
if failures > 0 then
  redis.call('HINCRBY', state_key, 'failures', failures)
end

-- Consecutive failures, continued across batches and instances.
local tripped = false
if successes == 0 then
  st.consec = st.consec + failures
  tripped = failures > 0 and st.consec >= fail_max
else
  tripped = (lead > 0 and st.consec + lead >= fail_max) or max_run >= fail_max
  st.consec = tail
end
if tripped then
  br_transition(state_key, window_key, st, 'open', now, reset_ms, 'consecutive_failures', name, instance, channel)
  return br_reply(2, st, now)
end
redis.call('HSET', state_key, 'consec', st.consec)

-- Failure rate over the sliding window of buckets.
if rate_pct > 0 then
  local bucket = math.floor(now / bucket_ms)
  local buckets = math.ceil(window_ms / bucket_ms)
  redis.call('HINCRBY', window_key, 'n:' .. bucket, successes + failures)
  if failures > 0 then
    redis.call('HINCRBY', window_key, 'f:' .. bucket, failures)
  end
  redis.call('PEXPIRE', window_key, window_ms + bucket_ms)
  local calls = 0
  local failed = 0
  local fields = redis.call('HGETALL', window_key)
  for i = 1, #fields, 2 do
    local kind = string.sub(fields[i], 1, 1)
    local b = tonumber(string.sub(fields[i], 3))
    if b <= bucket - buckets then
      redis.call('HDEL', window_key, fields[i])
    elseif kind == 'n' then
      calls = calls + tonumber(fields[i + 1])
    else
      failed = failed + tonumber(fields[i + 1])
    end
  end
  if calls >= min_calls and failed * 100 >= rate_pct * calls then
    br_transition(state_key, window_key, st, 'open', now, reset_ms, 'failure_rate', name, instance, channel)
    return br_reply(2, st, now)
  end
end
return br_reply(1, st, now)
