--[[
  Reads a topic's history after an offset, and says whether it is complete:
  whether every message published after that offset is still in the stream.

  Trimming removes the oldest entries first and ws_publish.lua records the
  newest id it removed (`trimmed`), so nothing after `since` is gone when
  `since` is at or past it. A history created after `since` (Redis lost its
  data and a new one began) misses everything in between.

  KEYS[1] history stream of the topic
  KEYS[2] history meta hash: created, trimmed

  ARGV[1] since: an offset "<ms>-<seq>" (exclusive; "0-0" = from the start),
          or "" to read only the tail
  ARGV[2] most entries returned

  Returns a flat array: complete, tail, scanned, last_scanned, then per entry
          offset, data, origin, key, target.
          complete is 1 when no message after `since` is missing (always 1 for ""),
          else 0 (also for a `since` newer than the tail: it came from another history);
          tail is the newest offset ("0-0" for a topic without messages);
          scanned is how many entries this call returned and last_scanned the last
          one's id ("" for none): a caller pages on while scanned equals its limit.
          Entries are returned even when complete is 0.
]]
local history = KEYS[1]
local meta = KEYS[2]
local since = ARGV[1]
local limit = tonumber(ARGV[2])

-- @include "stream_id"

local last = redis.call('XREVRANGE', history, '+', '-', 'COUNT', 1)[1]
local tail = '0-0'
if last ~= nil then
  tail = last[1]
end
local out = { 1, tail, 0, '' }
if since == '' then
  return out
end

local state = redis.call('HMGET', meta, 'created', 'trimmed')
local created, trimmed = state[1], state[2]
local complete = not stream_id_before(tail, since)
if created and since ~= '0-0' and stream_id_before(since, created) then
  complete = false
end
if trimmed and stream_id_before(since, trimmed) then
  complete = false
end
if not created and since ~= '0-0' then
  -- No history at all, yet the reader saw a message of it: the history was lost.
  complete = false
end
if not complete then
  out[1] = 0
end

local entries = redis.call('XRANGE', history, '(' .. since, '+', 'COUNT', limit)
out[3] = #entries
if #entries > 0 then
  out[4] = entries[#entries][1]
end
for _, entry in ipairs(entries) do
  local f = {}
  local kv = entry[2]
  for i = 1, #kv, 2 do
    f[kv[i]] = kv[i + 1]
  end
  out[#out + 1] = entry[1]
  out[#out + 1] = f['d'] or 'null'
  out[#out + 1] = f['o'] or ''
  out[#out + 1] = f['k'] or ''
  out[#out + 1] = f['t'] or ''
end
return out
