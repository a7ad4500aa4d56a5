--[[
  Heartbeat: renews the leases of a batch of running tasks, fenced by token.

  KEYS[1] leases sorted set

  ARGV[1] key prefix
  ARGV[2] lease duration ms (from now)
  ARGV[3] JSON array of [id, lease_token]

  Returns one code per entry: 1 renewed, -1 lease lost (token changed or task gone).
]]
-- @include "now_ms"
local leases_key = KEYS[1]
local prefix = ARGV[1]
local lease_ms = tonumber(ARGV[2])
local entries = cjson.decode(ARGV[3])

local now = now_ms()
local out = {}
for i, entry in ipairs(entries) do
  local task_key = prefix .. 'task:' .. entry[1]
  -- The leases set holds the expiry; the task hash no longer does (docs/queue.md,
  -- "Stored tasks across versions").
  if entry[2] ~= '' and redis.call('HGET', task_key, 'lease_token') == entry[2] then
    redis.call('ZADD', leases_key, now + lease_ms, entry[1])
    out[i] = 1
  else
    out[i] = -1
  end
end
return out
