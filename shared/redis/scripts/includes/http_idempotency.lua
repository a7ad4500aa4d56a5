-- An HTTP Idempotency-Key record (edge/idempotency/store.ts has its layout):
-- what a request finds there, and its claim. Shared by claim_key.lua, which
-- claims before the request runs, and enqueue_keyed.lua, which claims, enqueues
-- and stores the answer in one step, so both answer a retry alike.

-- nil when the key is free; else the reply a retry gets (codes as claim_key.lua):
-- { -2 } other fingerprint, { -1, lock_left_ms } in flight, { -3, status } not
-- replayable, { 2, status, headers_json, body, body_encoding, task_id } done.
local function idempotency_record_outcome(record_key, fingerprint)
  local f = redis.call('HMGET', record_key, 'state', 'fingerprint', 'status', 'headers', 'body',
    'body_encoding', 'task_id')
  if not f[1] then
    return nil
  end
  if f[2] ~= fingerprint then
    return { -2 }
  end
  if f[1] == 'in_flight' then
    return { -1, redis.call('PTTL', record_key) }
  end
  if f[1] == 'unreplayable' then
    return { -3, tonumber(f[3]) }
  end
  return { 2, tonumber(f[3]), f[4], f[5], f[6], f[7] or '' }
end

-- Takes a free key for one request: in flight, fenced by its token, expiring with its lock.
local function idempotency_claim(record_key, fingerprint, token, lock_ms, scope, idempotency_key)
  redis.call('HSET', record_key, 'state', 'in_flight', 'fingerprint', fingerprint, 'token', token,
    'scope', scope, 'key', idempotency_key)
  redis.call('PEXPIRE', record_key, lock_ms)
end
