--[[
  Claims up to N ready tasks in strict priority order, giving each a lease
  and a fresh lease token. Before claiming it (1) promotes due tasks from the
  delayed set and (2) takes back tasks whose lease expired (a crashed or
  stalled worker's work): back to the FRONT of their ready list, or to the
  dead-letter queue when that was their last attempt.

  KEYS[1] ready list, priority high
  KEYS[2] ready list, priority normal
  KEYS[3] ready list, priority low
  KEYS[4] delayed sorted set
  KEYS[5] leases sorted set (score = lease expiry ms)
  KEYS[6] stats hash
  KEYS[7] dead-letter sorted set

  ARGV[1] key prefix
  ARGV[2] maximum number of tasks to claim (0 = only housekeeping)
  ARGV[3] lease duration ms
  ARGV[4] lease token base (random per call; the token is base .. ':' .. n)
  ARGV[5] worker id (diagnostics)
  ARGV[6] DLQ retention ms
  ARGV[7] DLQ cap (entries)
  ARGV[8] DLQ alert channel
  ARGV[9] JSON array of PAUSED task types (their downstream breaker is open): a
          popped task of such a type is parked in prefix .. 'parked:' .. type
          instead of being claimed, so it waits without burning attempts; parked
          tasks of types no longer paused go back to the FRONT of their ready list.
  ARGV[10] live-feed spec of the `tasks` topic (includes/feed.lua), or "": claimed
          tasks are published as `running`, recovered ones as `pending`, dead ones as `dead`
  ARGV[11] dead-letter alert spec (includes/dead_letter_alert.lua), or "": each
          dead-lettered task also queues a `deliver_alert` task

  Returns { next_due, recovered, dead, parked, id_1, token_1, type_1, payload_1, attempts_1,
            max_attempts_1, timeout_ms_1, traceparent_1, created_at_1, … }
          next_due is the earliest delayed due time in ms, or -1 when none;
          recovered counts expired leases returned to ready; dead counts
          expired leases that went to the DLQ; parked counts tasks parked by
          this call. traceparent is "" when absent.
]]
-- @include "now_ms"
-- @include "task_events"
-- @include "dead_letter_alert"
-- @include "dead_letter"
local ready = { high = KEYS[1], normal = KEYS[2], low = KEYS[3] }
local order = { KEYS[1], KEYS[2], KEYS[3] }
local delayed_key = KEYS[4]
local leases_key = KEYS[5]
local stats_key = KEYS[6]
local dlq_key = KEYS[7]
local prefix = ARGV[1]
local want = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])
local token_base = ARGV[4]
local worker = ARGV[5]
local retention_ms = tonumber(ARGV[6])
local cap = tonumber(ARGV[7])
local channel = ARGV[8]
local paused = {}
for _, t in ipairs(cjson.decode(ARGV[9] or '[]')) do
  paused[t] = true
end
local parked_types_key = prefix .. 'parked:types'
local feed = feed_open(ARGV[10])
local alert = alert_open(ARGV[11])

local now = now_ms()

-- 0. Resume parked tasks whose type is no longer paused (bounded per call).
local budget = 1000
for _, t in ipairs(redis.call('SMEMBERS', parked_types_key)) do
  if not paused[t] and budget > 0 then
    local parked_key = prefix .. 'parked:' .. t
    while budget > 0 do
      -- RPOP + LPUSH puts the oldest parked task at the very front again.
      local id = redis.call('RPOP', parked_key)
      if not id then
        redis.call('SREM', parked_types_key, t)
        break
      end
      budget = budget - 1
      local priority = redis.call('HGET', prefix .. 'task:' .. id, 'priority')
      if priority then
        redis.call('LPUSH', ready[priority], id)
      end
    end
  end
end

-- 1. Promote due delayed tasks (bounded per call; the rest next call).
local due = redis.call('ZRANGEBYSCORE', delayed_key, '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', delayed_key, id)
  local priority = redis.call('HGET', prefix .. 'task:' .. id, 'priority')
  if priority then
    redis.call('RPUSH', ready[priority], id)
  end
end

-- 2. Take back expired leases.
local recovered = 0
local dead = 0
local expired = redis.call('ZRANGEBYSCORE', leases_key, '-inf', now, 'LIMIT', 0, 100)
for _, id in ipairs(expired) do
  redis.call('ZREM', leases_key, id)
  local task_key = prefix .. 'task:' .. id
  local fields = redis.call('HMGET', task_key, 'priority', 'attempts', 'max_attempts')
  if fields[1] then
    local attempts = tonumber(fields[2])
    local max_attempts = tonumber(fields[3])
    local message = 'Lease expired on attempt ' .. attempts .. ' of ' .. max_attempts .. ' (worker lost or stalled)'
    redis.call('HSET', task_key, 'last_error', message)
    if attempts >= max_attempts then
      dead_letter(prefix, dlq_key, stats_key, id, now, 'Max retries (' .. max_attempts .. ') exceeded: ' .. message,
        retention_ms, cap, channel, feed, alert)
      dead = dead + 1
    else
      redis.call('HSET', task_key, 'status', 'pending', 'updated_at', now)
      redis.call('HDEL', task_key, 'lease_token', 'lease_expires')
      redis.call('LPUSH', ready[fields[1]], id)
      task_event(feed, id, 'pending', redis.call('HGET', task_key, 'type'), attempts, max_attempts,
        task_event_extra('expired', true))
      recovered = recovered + 1
    end
  end
end
if recovered > 0 then
  redis.call('HINCRBY', stats_key, 'recovered', recovered)
end

-- 3. Claim in strict priority order (parking tasks of paused types on the way).
local out = { -1, recovered, dead, 0 }
local n = 0
local parked = 0
local pops = 0
local expires = now + lease_ms
local leased = {}
local worker_extra = task_event_extra('worker', worker)
for _, list in ipairs(order) do
  while n < want and pops < 1000 do
    local ids = redis.call('LPOP', list, want - n)
    if not ids then break end
    pops = pops + #ids
    for _, id in ipairs(ids) do
      local task_key = prefix .. 'task:' .. id
      local fields = redis.call('HMGET', task_key, 'type', 'payload', 'max_attempts', 'timeout_ms', 'traceparent',
        'created_at', 'attempts')
      -- A task whose hash expired while queued cannot run: skip it.
      if fields[1] and paused[fields[1]] then
        redis.call('RPUSH', prefix .. 'parked:' .. fields[1], id)
        redis.call('SADD', parked_types_key, fields[1])
        parked = parked + 1
      elseif fields[1] then
        n = n + 1
        local token = token_base .. ':' .. n
        local attempts = (tonumber(fields[7]) or 0) + 1
        -- The lease's expiry lives in the leases set only (docs/queue.md,
        -- "Stored tasks across versions").
        redis.call('HSET', task_key, 'attempts', attempts, 'status', 'running', 'lease_token', token,
          'started_at', now, 'updated_at', now, 'worker', worker)
        task_event(feed, id, 'running', fields[1], attempts, tonumber(fields[3]), worker_extra)
        leased[#leased + 1] = expires
        leased[#leased + 1] = id
        out[#out + 1] = id
        out[#out + 1] = token
        out[#out + 1] = fields[1]
        out[#out + 1] = fields[2]
        out[#out + 1] = attempts
        out[#out + 1] = fields[3]
        out[#out + 1] = fields[4]
        out[#out + 1] = fields[5] or ''
        out[#out + 1] = fields[6]
      end
    end
  end
end
out[4] = parked
-- All leases in one ZADD (500 per call: unpack is bounded by Lua's C stack).
for i = 1, #leased, 1000 do
  redis.call('ZADD', leases_key, unpack(leased, i, math.min(i + 999, #leased)))
end

local next_due = redis.call('ZRANGE', delayed_key, 0, 0, 'WITHSCORES')
if next_due[2] then
  out[1] = tonumber(next_due[2])
end
feed_trim(feed, now)
return out
