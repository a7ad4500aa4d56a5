--[[
  Enqueues a batch of tasks atomically; each is idempotent on its key.

  KEYS[1] ready list, priority high
  KEYS[2] ready list, priority normal
  KEYS[3] ready list, priority low
  KEYS[4] delayed sorted set (score = due ms)
  KEYS[5] stats hash

  ARGV[1] key prefix, e.g. "pc:{q}:" (task and idempotency keys are built from it)
  ARGV[2] idempotency window in ms
  ARGV[3] notify channel (published when tasks became ready)
  ARGV[4] JSON array of tasks:
          {id, type, payload, priority, idem, delay_ms, run_at, max_attempts, timeout_ms, traceparent, principal}
          principal is the enqueuing principal's sub or null
          run_at is epoch ms or null; delay_ms is relative to the Redis clock.
  ARGV[5] live-feed spec of the `tasks` topic (includes/feed.lua), or "": each
          new task is published as `pending`

  Returns a flat array: id_1, created_1, id_2, created_2, …
          created is 1 for a new task, 0 when the key was seen within the window
          (id is then the FIRST task's id).
]]
-- @include "now_ms"
-- @include "task_events"
local prefix = ARGV[1]
local window_ms = tonumber(ARGV[2])
local channel = ARGV[3]
local tasks = cjson.decode(ARGV[4])
local feed = feed_open(ARGV[5])
local ready = { high = KEYS[1], normal = KEYS[2], low = KEYS[3] }
local delayed_key = KEYS[4]
local stats_key = KEYS[5]

local now = now_ms()
local out = {}
local created = 0
-- Ready ids per priority, pushed with one RPUSH each after the loop (in order).
local to_push = { high = {}, normal = {}, low = {} }

for _, task in ipairs(tasks) do
  local idem_key = prefix .. 'idem:' .. task.idem
  -- Claim the key first: a new key (the common case) costs one command; only a
  -- key seen within the window reads the first task's id.
  if not redis.call('SET', idem_key, task.id, 'NX', 'PX', window_ms) then
    out[#out + 1] = redis.call('GET', idem_key)
    out[#out + 1] = 0
  else
    local run_at = now
    if type(task.run_at) == 'number' and task.run_at > now then
      run_at = task.run_at
    end
    if type(task.delay_ms) == 'number' and task.delay_ms > 0 then
      run_at = now + task.delay_ms
    end
    local task_key = prefix .. 'task:' .. task.id
    -- One HSET with the optional fields appended.
    local fields = { task_key,
      'id', task.id, 'type', task.type, 'payload', task.payload, 'priority', task.priority,
      'status', 'pending', 'attempts', 0, 'max_attempts', task.max_attempts,
      'timeout_ms', task.timeout_ms, 'idem', task.idem,
      'created_at', now, 'updated_at', now, 'run_at', run_at }
    if type(task.traceparent) == 'string' then
      fields[#fields + 1] = 'traceparent'
      fields[#fields + 1] = task.traceparent
    end
    if type(task.principal) == 'string' then
      fields[#fields + 1] = 'principal'
      fields[#fields + 1] = task.principal
    end
    redis.call('HSET', unpack(fields))
    if run_at > now then
      redis.call('ZADD', delayed_key, run_at, task.id)
    else
      local list = to_push[task.priority]
      list[#list + 1] = task.id
    end
    task_event(feed, task.id, 'pending', task.type, 0, task.max_attempts, task_event_extra('run_at', run_at))
    created = created + 1
    out[#out + 1] = task.id
    out[#out + 1] = 1
  end
end

local became_ready = 0
for priority, ids in pairs(to_push) do
  -- 1000 ids per call: unpack is bounded by Lua's C stack.
  for i = 1, #ids, 1000 do
    redis.call('RPUSH', ready[priority], unpack(ids, i, math.min(i + 999, #ids)))
  end
  became_ready = became_ready + #ids
end
if created > 0 then
  redis.call('HINCRBY', stats_key, 'enqueued', created)
end
if became_ready > 0 then
  redis.call('PUBLISH', channel, became_ready)
end
feed_trim(feed, now)
return out
