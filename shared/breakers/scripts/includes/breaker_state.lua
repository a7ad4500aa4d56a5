-- Breaker state hash helpers, shared by every breaker script.
-- Loads the state hash; a missing hash (new breaker, or Redis lost its data)
-- is created CLOSED with epoch = now, so epochs keep growing either way.
local function br_load(key, now)
  local f = redis.call('HMGET', key, 'state', 'epoch', 'open_until', 'probe_token', 'probe_until', 'consec', 'hp_ok',
    'reason', 'by', 'trips')
  if f[2] == false then
    redis.call('HSET', key, 'state', 'closed', 'epoch', now, 'consec', 0, 'changed_at', now)
    return { state = 'closed', epoch = now, open_until = 0, probe_token = '', probe_until = 0, consec = 0, hp_ok = 0,
      reason = '', by = '', trips = 0 }
  end
  return {
    state = f[1] or 'closed',
    epoch = tonumber(f[2]),
    open_until = tonumber(f[3]) or 0,
    probe_token = f[4] or '',
    probe_until = tonumber(f[5]) or 0,
    consec = tonumber(f[6]) or 0,
    hp_ok = tonumber(f[7]) or 0,
    reason = f[8] or '',
    by = f[9] or '',
    trips = tonumber(f[10]) or 0,
  }
end

-- Remaining durations, not absolute times: instances convert them to their own clock.
-- Reply: { code, state, epoch, open_remaining_ms (-1 outside OPEN),
--          probe_remaining_ms (-1 when no live lease), consec, reason, by, trips }
local function br_reply(code, st, now)
  local open_ms = -1
  if st.state == 'open' then
    open_ms = math.max(0, st.open_until - now)
  end
  local probe_ms = -1
  if st.state == 'half_open' and st.probe_token ~= '' and st.probe_until > now then
    probe_ms = st.probe_until - now
  end
  return { code, st.state, st.epoch, open_ms, probe_ms, st.consec, st.reason, st.by, st.trips }
end

-- Moves the breaker to `to`: bumps the epoch, resets the per-state fields and
-- the failure-rate window, counts the transition and publishes it.
local function br_transition(key, window_key, st, to, now, open_ms, reason, name, by, channel)
  local from = st.state
  st.state = to
  st.epoch = math.max(st.epoch + 1, now)
  st.consec = 0
  st.hp_ok = 0
  st.probe_token = ''
  st.probe_until = 0
  st.open_until = 0
  st.reason = reason
  st.by = by
  if to == 'open' then
    st.open_until = now + open_ms
  end
  redis.call('HSET', key, 'state', to, 'epoch', st.epoch, 'open_until', st.open_until, 'probe_token', '',
    'probe_until', 0, 'consec', 0, 'hp_ok', 0, 'changed_at', now, 'reason', reason, 'by', by)
  redis.call('HINCRBY', key, 'transitions', 1)
  if from == 'closed' and to == 'open' then
    st.trips = redis.call('HINCRBY', key, 'trips', 1)
  end
  redis.call('DEL', window_key)
  local payload = { t = 'transition', name = name, from = from, to = to, epoch = st.epoch, reason = reason, by = by }
  if to == 'open' then
    payload.open_ms = open_ms
  end
  redis.call('PUBLISH', channel, cjson.encode(payload))
end
