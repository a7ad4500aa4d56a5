--[[
  POST /v1/tasks in one step: takes the request's Idempotency-Key, enqueues
  its task and stores the 202 that names the task, atomically. A retry finds
  either nothing (the key is free: it runs) or the stored answer (it is
  replayed); there is no moment in which the key is held but the answer not
  yet written, so no in-flight lock and no completion call are needed.

  The record lives in the queue's cluster slot ({q}, shared/redis/keys.ts),
  so one script may write it next to the task. The body of enqueue.lua is
  inlined as a function (shared/redis/scripts.ts), so the task is written
  exactly as every other enqueue writes it.

  When the queue's own key for the task (`http:<sub>:<key>`) already names a
  task while the record is gone (the record's replay TTL is shorter than the
  queue's idempotency window, or the record was written before this script
  existed), the answer differs (that task's id, `created: false`): the key is
  then claimed as claim_key.lua claims it and the edge completes it with
  complete_key.lua, as for any other route.

  KEYS[1] ready list, priority high      (as enqueue.lua)
  KEYS[2] ready list, priority normal    (as enqueue.lua)
  KEYS[3] ready list, priority low       (as enqueue.lua)
  KEYS[4] delayed sorted set             (as enqueue.lua)
  KEYS[5] stats hash                     (as enqueue.lua)
  KEYS[6] idempotency record hash (in the queue's slot)

  ARGV[1] key prefix                     (as enqueue.lua)
  ARGV[2] queue idempotency window in ms (as enqueue.lua)
  ARGV[3] notify channel                 (as enqueue.lua)
  ARGV[4] JSON array holding exactly ONE task (as enqueue.lua)
  ARGV[5] live-feed spec of the `tasks` topic, or "" (as enqueue.lua)
  ARGV[6] request fingerprint (hex SHA-256)
  ARGV[7] claim token (used only when the key is claimed, see above)
  ARGV[8] lock duration ms (idem)
  ARGV[9] scope (kept for diagnostics)
  ARGV[10] the Idempotency-Key as sent (kept for diagnostics)
  ARGV[11] how long the answer is replayed, ms
  ARGV[12] HTTP status of the answer for a new task
  ARGV[13] its stored headers, JSON array of [name, value]
  ARGV[14] its body (encoded as ARGV[15] says)
  ARGV[15] body encoding: "utf8" or "base64"

  Returns
    { 3, task_id }          stored: the task was enqueued and the answer stored
    { 1, task_id }          claimed: the queue's key already named task_id (not
                            enqueued again); complete the record as usual
    { -1, lock_left_ms }    in flight with the same fingerprint  (as claim_key.lua)
    { -2 }                  the key was used with a different fingerprint
    { 2, status, headers_json, body, body_encoding, task_id }
                            completed: replay
    { -3, status }          completed, but the response was too large to store
]]
-- @include "http_idempotency"
local enqueue_keys = { KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5] }
local record_key = KEYS[6]
local enqueue_args = { ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5] }
local fingerprint = ARGV[6]
local token = ARGV[7]
local lock_ms = tonumber(ARGV[8])
local scope = ARGV[9]
local idempotency_key = ARGV[10]
local ttl_ms = tonumber(ARGV[11])

local function enqueue_tasks(KEYS, ARGV)
-- @include "enqueue_script"
end

local outcome = idempotency_record_outcome(record_key, fingerprint)
if outcome then
  return outcome
end

local out = enqueue_tasks(enqueue_keys, enqueue_args)
local task_id = out[1]
if out[2] == 0 then
  idempotency_claim(record_key, fingerprint, token, lock_ms, scope, idempotency_key)
  return { 1, task_id }
end
redis.call('HSET', record_key, 'state', 'done', 'fingerprint', fingerprint, 'scope', scope,
  'key', idempotency_key, 'status', ARGV[12], 'headers', ARGV[13], 'body', ARGV[14],
  'body_encoding', ARGV[15], 'task_id', task_id)
redis.call('PEXPIRE', record_key, ttl_ms)
return { 3, task_id }
