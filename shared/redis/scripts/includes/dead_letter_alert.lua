-- A dead-lettered task becomes an alert in the same step: a `deliver_alert`
-- task (shared/alerts/) is written next to the DLQ entry, so the alert
-- exists as soon as the task is dead, whether or not any edge or feed reader
-- is connected, and it is delivered with the queue's own retries.
--
-- alert_open(spec) reads the JSON spec the queue passes
-- ({type, priority, ready, notify, window_ms, max_attempts, timeout_ms};
-- "" = alerts off → nil). alert_dead() writes one task like enqueue.lua does
-- (idempotency key `alert:<event id>`, same task hash fields). A dead
-- deliver_alert task raises no alert of its own: that would loop whenever the
-- receiver is down. The task id is a UUID-shaped SHA-1 of the event id, so it
-- is stable for one event and passes the API's id checks.
local function alert_open(spec)
  if spec == nil or spec == '' then
    return nil
  end
  return cjson.decode(spec)
end

local function alert_uuid(seed)
  local h = redis.sha1hex(seed)
  return h:sub(1, 8) .. '-' .. h:sub(9, 12) .. '-5' .. h:sub(14, 16) .. '-8' .. h:sub(18, 20) .. '-' ..
    h:sub(21, 32)
end

local function alert_dead(alert, prefix, stats_key, id, task_type, reason, now)
  if alert == nil or task_type == alert.type then
    return
  end
  local event_id = 'dlq:' .. id .. ':' .. now
  local idem_key = prefix .. 'idem:alert:' .. event_id
  if redis.call('GET', idem_key) then
    return
  end
  local alert_id = alert_uuid(event_id)
  redis.call('SET', idem_key, alert_id, 'PX', alert.window_ms)
  local payload = cjson.encode({
    event_id = event_id,
    alert = 'TaskDeadLettered',
    severity = 'ticket',
    summary = 'Task ' .. tostring(task_type) .. ' ' .. id .. ' was dead-lettered',
    description = reason,
    labels = { task_type = tostring(task_type), task_id = id },
    at_ms = now,
  })
  redis.call('HSET', prefix .. 'task:' .. alert_id,
    'id', alert_id, 'type', alert.type, 'payload', payload, 'priority', alert.priority,
    'status', 'pending', 'attempts', 0, 'max_attempts', alert.max_attempts,
    'timeout_ms', alert.timeout_ms, 'idem', 'alert:' .. event_id,
    'created_at', now, 'updated_at', now, 'run_at', now)
  redis.call('RPUSH', alert.ready, alert_id)
  redis.call('HINCRBY', stats_key, 'enqueued', 1)
  redis.call('PUBLISH', alert.notify, 1)
end
