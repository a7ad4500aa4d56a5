--[[
  Completes a batch of tasks. Each completion must present the task's
  CURRENT lease token (fencing): a worker whose lease expired and whose task
  was claimed again cannot complete it.

  KEYS[1] leases sorted set
  KEYS[2] stats hash

  ARGV[1] key prefix
  ARGV[2] how long a finished task is kept, ms
  ARGV[3] JSON array of [id, lease_token, result_json]
  ARGV[4] live-feed spec of the `tasks` topic (includes/feed.lua), or "": each
          completed task is published as `succeeded`

  Returns an array with one code per entry: 1 completed, -1 stale lease token.
]]
-- @include "now_ms"
-- @include "task_events"
local leases_key = KEYS[1]
local stats_key = KEYS[2]
local prefix = ARGV[1]
local keep_ms = tonumber(ARGV[2])
local entries = cjson.decode(ARGV[3])
local feed = feed_open(ARGV[4])

local now = now_ms()
local out = {}
local acked = {}
for i, entry in ipairs(entries) do
  local id, token, result = entry[1], entry[2], entry[3]
  local task_key = prefix .. 'task:' .. id
  local fields = redis.call('HMGET', task_key, 'lease_token', 'type', 'attempts')
  if token ~= '' and fields[1] == token then
    -- The token is blanked rather than deleted (one command less per task); ''
    -- never fences anything (docs/queue.md, "Stored tasks across versions").
    redis.call('HSET', task_key, 'status', 'succeeded', 'result', result, 'finished_at', now, 'updated_at', now,
      'lease_token', '')
    redis.call('PEXPIRE', task_key, keep_ms)
    task_event(feed, id, 'succeeded', fields[2], tonumber(fields[3]))
    acked[#acked + 1] = id
    out[i] = 1
  else
    out[i] = -1
  end
end
if #acked > 0 then
  -- One ZREM for the batch (1000 ids per call: unpack is bounded by Lua's C stack).
  for i = 1, #acked, 1000 do
    redis.call('ZREM', leases_key, unpack(acked, i, math.min(i + 999, #acked)))
  end
  redis.call('HINCRBY', stats_key, 'succeeded', #acked)
end
feed_trim(feed, now)
return out
