--[[
  Replays dead-lettered tasks: back to the END of their ready list with
  attempts reset; the task keeps its id and idempotency key (the key is
  re-armed for a full window, so a re-enqueue meanwhile dedups to it).

  KEYS[1] ready list, priority high
  KEYS[2] ready list, priority normal
  KEYS[3] ready list, priority low
  KEYS[4] dead-letter sorted set
  KEYS[5] stats hash

  ARGV[1] key prefix
  ARGV[2] notify channel
  ARGV[3] idempotency window ms
  ARGV[4] JSON array of task ids
  ARGV[5] live-feed spec of the `tasks` topic (includes/feed.lua), or "": each
          replayed task is published as `pending`

  Returns one code per id: 1 replayed, 0 not in the DLQ.
]]
-- @include "now_ms"
-- @include "task_events"
local ready = { high = KEYS[1], normal = KEYS[2], low = KEYS[3] }
local dlq_key = KEYS[4]
local stats_key = KEYS[5]
local prefix = ARGV[1]
local channel = ARGV[2]
local window_ms = tonumber(ARGV[3])
local ids = cjson.decode(ARGV[4])
local feed = feed_open(ARGV[5])

local now = now_ms()
local out = {}
local replayed = 0
for i, id in ipairs(ids) do
  local task_key = prefix .. 'task:' .. id
  local fields = redis.call('HMGET', task_key, 'type', 'priority', 'idem')
  if redis.call('ZREM', dlq_key, id) == 1 and fields[1] then
    redis.call('ZREM', prefix .. 'dlq:type:' .. fields[1], id)
    redis.call('PERSIST', task_key)
    redis.call('HSET', task_key, 'status', 'pending', 'attempts', 0, 'updated_at', now, 'replayed_at', now)
    redis.call('HDEL', task_key, 'failed_at', 'dlq_reason', 'lease_token', 'lease_expires')
    redis.call('HINCRBY', task_key, 'replays', 1)
    if fields[3] then
      redis.call('SET', prefix .. 'idem:' .. fields[3], id, 'PX', window_ms)
    end
    redis.call('RPUSH', ready[fields[2]], id)
    task_event(feed, id, 'pending', fields[1], 0, nil, task_event_extra('replayed', true))
    replayed = replayed + 1
    out[i] = 1
  else
    out[i] = 0
  end
end
if replayed > 0 then
  redis.call('HINCRBY', stats_key, 'replayed', replayed)
  redis.call('PUBLISH', channel, replayed)
end
feed_trim(feed, now)
return out
