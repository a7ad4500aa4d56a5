--[[
  Deletes dead-lettered tasks for good.

  KEYS[1] dead-letter sorted set
  KEYS[2] stats hash

  ARGV[1] key prefix
  ARGV[2] JSON array of task ids

  Returns one code per id: 1 purged, 0 not in the DLQ.
]]
local dlq_key = KEYS[1]
local stats_key = KEYS[2]
local prefix = ARGV[1]
local ids = cjson.decode(ARGV[2])

local out = {}
local purged = 0
for i, id in ipairs(ids) do
  local task_key = prefix .. 'task:' .. id
  local task_type = redis.call('HGET', task_key, 'type')
  if redis.call('ZREM', dlq_key, id) == 1 then
    if task_type then
      redis.call('ZREM', prefix .. 'dlq:type:' .. task_type, id)
    end
    redis.call('DEL', task_key)
    purged = purged + 1
    out[i] = 1
  else
    out[i] = 0
  end
end
if purged > 0 then
  redis.call('HINCRBY', stats_key, 'purged', purged)
end
return out
