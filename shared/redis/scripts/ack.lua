--[[
  Completes a batch of tasks. Each completion must present the task's
  CURRENT lease token (fencing): a worker whose lease expired and whose task
  was claimed again cannot complete it.

  KEYS[1] leases sorted set
  KEYS[2] stats hash

  ARGV[1] key prefix
  ARGV[2] how long a finished task is kept, ms
  ARGV[3] JSON array of [id, lease_token, result_json]

  Returns an array with one code per entry: 1 completed, -1 stale lease token.
]]
-- @include "now_ms"
local leases_key = KEYS[1]
local stats_key = KEYS[2]
local prefix = ARGV[1]
local keep_ms = tonumber(ARGV[2])
local entries = cjson.decode(ARGV[3])

local now = now_ms()
local out = {}
local done = 0
for i, entry in ipairs(entries) do
  local id, token, result = entry[1], entry[2], entry[3]
  local task_key = prefix .. 'task:' .. id
  if redis.call('HGET', task_key, 'lease_token') == token then
    redis.call('HSET', task_key, 'status', 'succeeded', 'result', result, 'finished_at', now, 'updated_at', now)
    redis.call('HDEL', task_key, 'lease_token', 'lease_expires', 'last_error_at')
    redis.call('ZREM', leases_key, id)
    redis.call('PEXPIRE', task_key, keep_ms)
    done = done + 1
    out[i] = 1
  else
    out[i] = -1
  end
end
if done > 0 then
  redis.call('HINCRBY', stats_key, 'succeeded', done)
end
return out
