-- Moves one task (already removed from ready/leases/delayed) to the
-- dead-letter queue. Expired entries (older than the retention) are trimmed
-- first; when the cap is exceeded the OLDEST entries are evicted and an alert
-- naming them is published, so nothing leaves the DLQ silently.
-- The `dead` status goes to the live feed (task_events.lua, included before
-- this file; `feed` may be nil), without the reason: every reader of tasks
-- follows the `tasks` topic, while a task's errors are its enqueuer's and
-- admins' (GET /v1/tasks/<id>; the admin-only DLQ).
-- `alert` (dead_letter_alert.lua, included before this file; may be nil)
-- queues the alert webhook's delivery of this arrival.
-- Returns 2 (dead) or 3 (dead, and older entries were evicted by the cap).
local function dead_letter(prefix, dlq_key, stats_key, id, now, reason, retention_ms, cap, channel, feed, alert)
  local task_key = prefix .. 'task:' .. id
  local task_info = redis.call('HMGET', task_key, 'type', 'attempts', 'max_attempts')
  local task_type = task_info[1]
  task_event(feed, id, 'dead', task_type, tonumber(task_info[2]), tonumber(task_info[3]))
  redis.call('HSET', task_key, 'status', 'dead', 'failed_at', now, 'updated_at', now, 'dlq_reason', reason)
  redis.call('HDEL', task_key, 'lease_token', 'lease_expires', 'run_at')
  -- The hash outlives its DLQ entry by a day so trimming can still read its type.
  redis.call('PEXPIRE', task_key, retention_ms + 86400000)
  redis.call('ZADD', dlq_key, now, id)
  redis.call('ZADD', prefix .. 'dlq:type:' .. task_type, now, id)
  redis.call('SADD', prefix .. 'dlq:types', task_type)
  redis.call('HINCRBY', stats_key, 'dead', 1)
  redis.call('PUBLISH', channel, cjson.encode({ event = 'dead', id = id, type = task_type, reason = reason, at = now }))
  alert_dead(alert, prefix, stats_key, id, task_type, reason, now)

  local function drop(victim)
    local victim_key = prefix .. 'task:' .. victim
    local victim_type = redis.call('HGET', victim_key, 'type')
    redis.call('ZREM', dlq_key, victim)
    if victim_type then
      redis.call('ZREM', prefix .. 'dlq:type:' .. victim_type, victim)
    end
    redis.call('DEL', victim_key)
  end

  local expired = redis.call('ZRANGEBYSCORE', dlq_key, '-inf', now - retention_ms, 'LIMIT', 0, 100)
  for _, victim in ipairs(expired) do
    drop(victim)
  end

  local over = redis.call('ZCARD', dlq_key) - cap
  if over > 0 then
    local victims = redis.call('ZRANGE', dlq_key, 0, over - 1)
    for _, victim in ipairs(victims) do
      drop(victim)
    end
    redis.call('HINCRBY', stats_key, 'dlq_evicted', #victims)
    redis.call('PUBLISH', channel, cjson.encode({ event = 'cap_reached', cap = cap, evicted = victims, at = now }))
    return 3
  end
  return 2
end
