--[[
  Records failed attempts for a batch of tasks (fenced by lease token, like
  ack). A retriable failure with attempts left goes to the delayed set after
  its backoff; a permanent failure, or the last attempt, goes to the DLQ.

  KEYS[1] leases sorted set
  KEYS[2] delayed sorted set
  KEYS[3] dead-letter sorted set
  KEYS[4] stats hash

  ARGV[1] key prefix
  ARGV[2] JSON array of [id, lease_token, error_message, permanent (0|1), backoff_ms, refused (0|1)]
          refused: the handler's downstream breaker refused the call, so the
          downstream was never reached; the attempt is given back and the task
          retried after backoff_ms (a breaker outage never dead-letters a task)
  ARGV[3] DLQ retention ms
  ARGV[4] DLQ cap
  ARGV[5] DLQ alert channel
  ARGV[6] live-feed spec of the `tasks` topic (includes/feed.lua), or "": each
          failure is published as `retrying` or `dead`
  ARGV[7] dead-letter alert spec (includes/dead_letter_alert.lua), or "": each
          dead-lettered task also queues a `deliver_alert` task

  Returns one code per entry: 1 retry scheduled, 2 dead-lettered, 3 dead-lettered
  and older DLQ entries evicted by the cap, -1 stale lease token.
]]
-- @include "now_ms"
-- @include "task_events"
-- @include "dead_letter_alert"
-- @include "dead_letter"
local leases_key = KEYS[1]
local delayed_key = KEYS[2]
local dlq_key = KEYS[3]
local stats_key = KEYS[4]
local prefix = ARGV[1]
local entries = cjson.decode(ARGV[2])
local retention_ms = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local channel = ARGV[5]
local feed = feed_open(ARGV[6])
local alert = alert_open(ARGV[7])

local now = now_ms()
local out = {}
for i, entry in ipairs(entries) do
  local id, token, message, permanent, backoff_ms = entry[1], entry[2], entry[3], entry[4], entry[5]
  local refused = entry[6] == 1
  local task_key = prefix .. 'task:' .. id
  local fields = redis.call('HMGET', task_key, 'lease_token', 'attempts', 'max_attempts', 'type')
  if token == '' or fields[1] ~= token then
    out[i] = -1
  else
    redis.call('ZREM', leases_key, id)
    redis.call('HSET', task_key, 'last_error', message, 'last_error_at', now)
    local attempts = tonumber(fields[2])
    local max_attempts = tonumber(fields[3])
    if refused then
      redis.call('HINCRBY', task_key, 'attempts', -1)
      redis.call('HSET', task_key, 'status', 'retrying', 'run_at', now + backoff_ms, 'updated_at', now)
      redis.call('HDEL', task_key, 'lease_token', 'lease_expires')
      redis.call('ZADD', delayed_key, now + backoff_ms, id)
      redis.call('HINCRBY', stats_key, 'refused', 1)
      task_event(feed, id, 'retrying', fields[4], attempts - 1, max_attempts,
        task_event_extra('run_at', now + backoff_ms) .. task_event_extra('refused', true))
      out[i] = 1
    elseif permanent == 1 then
      out[i] = dead_letter(prefix, dlq_key, stats_key, id, now, 'Permanent error: ' .. message, retention_ms, cap, channel,
        feed, alert)
    elseif attempts >= max_attempts then
      out[i] = dead_letter(prefix, dlq_key, stats_key, id, now, 'Max retries (' .. max_attempts .. ') exceeded',
        retention_ms, cap, channel, feed, alert)
    else
      redis.call('HSET', task_key, 'status', 'retrying', 'run_at', now + backoff_ms, 'updated_at', now)
      redis.call('HDEL', task_key, 'lease_token', 'lease_expires')
      redis.call('ZADD', delayed_key, now + backoff_ms, id)
      redis.call('HINCRBY', stats_key, 'retried', 1)
      task_event(feed, id, 'retrying', fields[4], attempts, max_attempts, task_event_extra('run_at', now + backoff_ms))
      out[i] = 1
    end
  end
end
feed_trim(feed, now)
return out
