--[[
  Lists the registered live-feed clients that have not expired, in keyset
  pages ordered by (expiry ms, client id), after removing expired entries.
  A refresh only moves a client later, so a client connected for a whole
  iteration is listed at least once (it may be listed again after a refresh).

  KEYS[1] sorted set: client id → expiry ms
  KEYS[2] hash: client id → JSON info

  ARGV[1] most clients returned
  ARGV[2] the previous page's last expiry ms, or '' for the first page
  ARGV[3] the previous page's last client id, or ''

  Returns a flat array: total, more (1 when a next page exists, else 0),
          then per client id, expiry_ms, info.
          total counts every live client, on every page.
]]
-- @include "now_ms"
local expiry_key = KEYS[1]
local info_key = KEYS[2]
local limit = tonumber(ARGV[1])
local after_score = tonumber(ARGV[2])
local after_id = ARGV[3]

local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', expiry_key, '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', expiry_key, id)
  redis.call('HDEL', info_key, id)
end

-- Equal scores are ordered by member, so (score, id) is the set's own order:
-- start at the cursor's score and skip the ties up to its id.
local min = '(' .. now
if after_score ~= nil and after_score > now then min = tostring(after_score) end
local want = limit + 1
local picked = {}
local offset = 0
while #picked < want * 2 do
  local rows = redis.call('ZRANGEBYSCORE', expiry_key, min, '+inf', 'WITHSCORES', 'LIMIT', offset, want)
  for i = 1, #rows, 2 do
    local id, score = rows[i], tonumber(rows[i + 1])
    if not (after_score ~= nil and score == after_score and id <= after_id) then
      picked[#picked + 1] = id
      picked[#picked + 1] = rows[i + 1]
      if #picked == want * 2 then break end
    end
  end
  if #rows < want * 2 then break end
  offset = offset + want
end

local more = 0
if #picked > limit * 2 then more = 1 end
local out = { redis.call('ZCARD', expiry_key), more }
for i = 1, math.min(#picked, limit * 2), 2 do
  out[#out + 1] = picked[i]
  out[#out + 1] = picked[i + 1]
  out[#out + 1] = redis.call('HGET', info_key, picked[i]) or '{}'
end
return out
