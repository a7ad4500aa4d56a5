--[[
  Enqueues the task of one schedule slot, at most once per slot.

  The slot is enqueued only when its start time is later than the schedule's
  recorded last slot, and that record only moves forward; the check, the
  enqueue and the record are this one script, so no interleaving of workers
  can enqueue a slot twice, and a crash cannot record a slot whose task was
  not written. The guarantee does not rest on the queue's idempotency window:
  the deterministic key `schedule:<name>:<slot>` is a second guard only.

  Comparing start TIMES (not slot numbers) keeps the record monotonic when a
  schedule's interval changes: a longer interval waits for its first slot
  after the last run instead of re-running.

  The body of enqueue.lua is inlined as a function (see scripts.ts), so the
  task is written exactly as every other enqueue writes it.

  KEYS[1] ready list, priority high      (as enqueue.lua)
  KEYS[2] ready list, priority normal    (as enqueue.lua)
  KEYS[3] ready list, priority low       (as enqueue.lua)
  KEYS[4] delayed sorted set             (as enqueue.lua)
  KEYS[5] stats hash                     (as enqueue.lua)
  KEYS[6] schedule state hash: last_slot, last_slot_at, last_task_id,
          last_enqueued_at, next_run_at, every_ms, offset_ms, task_type,
          runs, missed_slots

  ARGV[1] key prefix                     (as enqueue.lua)
  ARGV[2] idempotency window in ms       (as enqueue.lua)
  ARGV[3] notify channel                 (as enqueue.lua)
  ARGV[4] JSON array holding exactly ONE task (as enqueue.lua), idem = schedule:<name>:<slot>
  ARGV[5] slot number: floor((t - offset) / every)
  ARGV[6] slot start, epoch ms: offset + slot * every
  ARGV[7] every, ms
  ARGV[8] offset, ms
  ARGV[9] task type (recorded for inspection)
  ARGV[10] live-feed spec of the `tasks` topic, or "" (as enqueue.lua's ARGV[5])

  Returns {1, task_id, created, missed} when this call enqueued the slot;
          created is 0 when the idempotency key already named a task (its id
          is returned); missed counts the whole slots skipped since the last
          one (downtime), which this ONE task catches up.
          {0, last_task_id, 0, 0} when this slot or a later one was already
          enqueued.
]]
local enqueue_keys = { KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5] }
local state_key = KEYS[6]
local enqueue_args = { ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[10] or '' }
local slot = tonumber(ARGV[5])
local slot_at = tonumber(ARGV[6])
local every_ms = tonumber(ARGV[7])
local offset_ms = tonumber(ARGV[8])
local task_type = ARGV[9]

-- @include "now_ms"

local function enqueue_tasks(KEYS, ARGV)
-- @include "enqueue_script"
end

local last_at = tonumber(redis.call('HGET', state_key, 'last_slot_at'))
if last_at ~= nil and last_at >= slot_at then
  local last_id = redis.call('HGET', state_key, 'last_task_id')
  if not last_id then
    last_id = ''
  end
  return { 0, last_id, 0, 0 }
end

local out = enqueue_tasks(enqueue_keys, enqueue_args)
local task_id = out[1]
local created = out[2]

local missed = 0
if last_at ~= nil then
  missed = math.floor((slot_at - last_at) / every_ms) - 1
  if missed < 0 then
    missed = 0
  end
end

redis.call('HSET', state_key,
  'last_slot', slot, 'last_slot_at', slot_at, 'last_task_id', task_id,
  'last_enqueued_at', now_ms(), 'next_run_at', slot_at + every_ms,
  'every_ms', every_ms, 'offset_ms', offset_ms, 'task_type', task_type)
redis.call('HINCRBY', state_key, 'runs', 1)
if missed > 0 then
  redis.call('HINCRBY', state_key, 'missed_slots', missed)
end
return { 1, task_id, created, missed }
