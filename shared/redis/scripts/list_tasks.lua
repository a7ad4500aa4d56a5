--[[
  Reads one page of the queue's own indexes, newest first, with the summary
  fields of each task. Read-only: it changes nothing, and a page is one call
  whatever its size (shared/queue/task_index.ts).

  KEYS[1..n] the indexes read, in this order: the ready lists high, normal,
             low (newest = tail), or one sorted set (newest = highest score)

  ARGV[1] key prefix (task keys are built from it)
  ARGV[2] kind: "list" or "zset"
  ARGV[3] limit: tasks returned at most (>= 1)
  ARGV[4] budget: index entries inspected at most (>= limit; more than limit
          only with a type filter, which skips other types)
  ARGV[5] type filter, or "" for every type
  ARGV[6] cursor: number of the KEYS entry to resume in, 0 = from the start
  ARGV[7] cursor: id of the last entry inspected, "" = from that key's newest
  ARGV[8] cursor: that entry's score ("0" for lists)
  ARGV[9] lowest score listed ("-inf", or "(ms" for the DLQ's retention)

  Returns { next_key, next_id, next_score, total, rows… }
          next_key is 0 at the end of the listing; otherwise the next page
          resumes after entry next_id (score next_score) of KEYS[next_key].
          total counts the entries of every index read (before a type filter).
          Each row is 11 values: id, type, status, priority, attempts,
          max_attempts, created_at, updated_at, run_at, failed_at, principal
          ("" for an absent field). Entries whose hash is gone are skipped.
]]
local prefix = ARGV[1]
local kind = ARGV[2]
local limit = tonumber(ARGV[3])
local budget = tonumber(ARGV[4])
local want_type = ARGV[5]
local start_key = tonumber(ARGV[6])
local after_id = ARGV[7]
local after_score = ARGV[8]
local min_score = ARGV[9]

local sizes = {}
local total = 0
for i, key in ipairs(KEYS) do
  if kind == 'list' then
    sizes[i] = redis.call('LLEN', key)
  else
    sizes[i] = redis.call('ZCOUNT', key, min_score, '+inf')
  end
  total = total + sizes[i]
end

local function above_min(score)
  if min_score == '-inf' then return true end
  if string.sub(min_score, 1, 1) == '(' then
    return tonumber(score) > tonumber(string.sub(min_score, 2))
  end
  return tonumber(score) >= tonumber(min_score)
end

-- Up to n + 1 entries of KEYS[i] after the cursor entry, newest first, as
-- { id, score } pairs.
local function window(i, cursor_id, cursor_score, n)
  local key = KEYS[i]
  local out = {}
  if kind == 'list' then
    local hi = sizes[i] - 1
    if cursor_id ~= '' then
      -- Searched from the tail, where a newest-first listing's cursors are.
      local pos = redis.call('LPOS', key, cursor_id, 'RANK', -1)
      -- Gone: claimed from the head, like the older entries behind it.
      if not pos then return out end
      hi = pos - 1
    end
    if hi < 0 then return out end
    local ids = redis.call('LRANGE', key, math.max(0, hi - n), hi)
    for j = #ids, 1, -1 do
      out[#out + 1] = { ids[j], '0' }
    end
    return out
  end
  local function take(flat)
    for j = 1, #flat, 2 do
      if not above_min(flat[j + 1]) then return end
      out[#out + 1] = { flat[j], flat[j + 1] }
    end
  end
  if cursor_id == '' then
    take(redis.call('ZREVRANGEBYSCORE', key, '+inf', min_score, 'WITHSCORES', 'LIMIT', 0, n + 1))
    return out
  end
  local score = redis.call('ZSCORE', key, cursor_id)
  if score and tonumber(score) == tonumber(cursor_score) then
    local rank = redis.call('ZREVRANK', key, cursor_id)
    take(redis.call('ZREVRANGE', key, rank + 1, rank + n + 1, 'WITHSCORES'))
    return out
  end
  -- The cursor's entry left the set: resume at its score, past the members
  -- listed before it (equal scores sort in reverse lexical order, so those are
  -- the ones >= the cursor's id). They are read again in chunks and dropped;
  -- there are at most as many as one score's ties.
  local offset = 0
  while #out < n + 1 do
    local flat = redis.call('ZREVRANGEBYSCORE', key, cursor_score, min_score, 'WITHSCORES', 'LIMIT', offset,
      n + 1)
    for j = 1, #flat, 2 do
      local id, s = flat[j], flat[j + 1]
      if not above_min(s) then return out end
      if not (tonumber(s) == tonumber(cursor_score) and id >= cursor_id) and #out < n + 1 then
        out[#out + 1] = { id, s }
      end
    end
    if #flat < 2 * (n + 1) then break end
    offset = offset + n + 1
  end
  return out
end

local rows = {}
local returned, inspected = 0, 0
local last_key, last_id, last_score = 0, '', '0'
local more = false
local i = 1
local cursor_id, cursor_score = '', '0'
if start_key > 0 then
  i, cursor_id, cursor_score = start_key, after_id, after_score
end
while i <= #KEYS and not more do
  local full = returned >= limit or inspected >= budget
  -- A full page only peeks (one entry) to tell whether another page follows.
  local entries = window(i, cursor_id, cursor_score, full and 0 or (budget - inspected))
  for _, entry in ipairs(entries) do
    if returned >= limit or inspected >= budget then
      more = true
      break
    end
    inspected = inspected + 1
    local id = entry[1]
    last_key, last_id, last_score = i, id, entry[2]
    local f = redis.call('HMGET', prefix .. 'task:' .. id, 'type', 'status', 'priority', 'attempts',
      'max_attempts', 'created_at', 'updated_at', 'run_at', 'failed_at', 'principal')
    if f[1] and (want_type == '' or f[1] == want_type) then
      returned = returned + 1
      rows[#rows + 1] = id
      for k = 1, 10 do
        rows[#rows + 1] = f[k] or ''
      end
    end
  end
  i, cursor_id, cursor_score = i + 1, '', '0'
end

local out = { more and last_key or 0, last_id, last_score, total }
for _, v in ipairs(rows) do
  out[#out + 1] = v
end
return out
