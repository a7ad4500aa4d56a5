--[[
  Hands running tasks back at once (graceful shutdown): to the FRONT of their
  ready list, attempt not counted, fenced by token.

  KEYS[1] ready list, priority high
  KEYS[2] ready list, priority normal
  KEYS[3] ready list, priority low
  KEYS[4] leases sorted set

  ARGV[1] key prefix
  ARGV[2] notify channel
  ARGV[3] JSON array of [id, lease_token]
  ARGV[4] live-feed spec of the `tasks` topic (includes/feed.lua), or "": each
          released task is published as `pending`

  Returns one code per entry: 1 released, -1 stale lease token.
]]
-- @include "now_ms"
-- @include "task_events"
local ready = { high = KEYS[1], normal = KEYS[2], low = KEYS[3] }
local leases_key = KEYS[4]
local prefix = ARGV[1]
local channel = ARGV[2]
local entries = cjson.decode(ARGV[3])
local feed = feed_open(ARGV[4])

local now = now_ms()
local out = {}
local released = 0
for i, entry in ipairs(entries) do
  local id = entry[1]
  local task_key = prefix .. 'task:' .. id
  local fields = redis.call('HMGET', task_key, 'lease_token', 'priority', 'type', 'attempts')
  if entry[2] ~= '' and fields[1] == entry[2] then
    redis.call('ZREM', leases_key, id)
    redis.call('HINCRBY', task_key, 'attempts', -1)
    redis.call('HSET', task_key, 'status', 'pending', 'updated_at', now)
    redis.call('HDEL', task_key, 'lease_token', 'lease_expires')
    redis.call('LPUSH', ready[fields[2]], id)
    task_event(feed, id, 'pending', fields[3], tonumber(fields[4]) - 1, nil, task_event_extra('released', true))
    released = released + 1
    out[i] = 1
  else
    out[i] = -1
  end
end
if released > 0 then
  redis.call('PUBLISH', channel, released)
end
feed_trim(feed, now)
return out
