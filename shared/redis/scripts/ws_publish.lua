--[[
  Publishes one live-feed message: appends it to its topic's history stream
  and PUBLISHes it on the feed channel in the same step, so history and live
  delivery can never disagree. The stream id is the message's offset; ids only
  grow, so every subscriber sees one topic's messages in offset order.

  The history is trimmed here, and only here (oldest first, to `max_len`
  entries and `max_age_ms`). Redis does not remember what trimming removed,
  so the meta hash does: `trimmed` is the newest id ever trimmed away and
  `created` the first id of this history (a Redis that lost its data starts
  a new one). ws_read_history.lua decides from both whether a reader missed
  anything.

  KEYS[1] history stream of the topic
  KEYS[2] history meta hash: created, trimmed
  KEYS[3] (optional) dedupe marker: when it exists nothing is written

  ARGV[1] feed channel
  ARGV[2] topic
  ARGV[3] data: JSON text, inserted verbatim into the published message
  ARGV[4] origin instance id
  ARGV[5] key inside the topic (e.g. a task id), or ""
  ARGV[6] target: JSON object text ({"user":…} / {"client":…}), or ""
  ARGV[7] most entries kept in the stream
  ARGV[8] oldest entry kept, ms before now
  ARGV[9] dedupe marker lifetime, ms (used only with KEYS[3])

  Returns {1, offset} when published,
          {0, first_offset} when the dedupe marker existed (nothing written).
]]
-- @include "now_ms"
local history = KEYS[1]
local meta = KEYS[2]
local dedupe = KEYS[3]
local channel = ARGV[1]
local topic = ARGV[2]
local data = ARGV[3]
local origin = ARGV[4]
local key = ARGV[5]
local target = ARGV[6]
local max_len = tonumber(ARGV[7])
local max_age_ms = tonumber(ARGV[8])
local dedupe_ms = tonumber(ARGV[9])

if dedupe ~= nil then
  local first = redis.call('GET', dedupe)
  if first then
    return { 0, first }
  end
end

-- true when stream id a < stream id b
local function before(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams < bms or (ams == bms and aseq < bseq)
end

local offset = redis.call('XADD', history, '*', 'd', data, 'o', origin, 'k', key, 't', target)
redis.call('HSETNX', meta, 'created', offset)

-- Trim: everything below `minid` goes (by age, and by count beyond max_len).
local now = now_ms()
local minid = (now - max_age_ms) .. '-0'
local len = redis.call('XLEN', history)
if len > max_len then
  local oldest = redis.call('XRANGE', history, '-', '+', 'COUNT', len - max_len + 1)
  local keep_from = oldest[#oldest][1]
  if before(minid, keep_from) then
    minid = keep_from
  end
end
local gone = redis.call('XREVRANGE', history, '(' .. minid, '-', 'COUNT', 1)
if #gone > 0 then
  redis.call('HSET', meta, 'trimmed', gone[1][1])
  redis.call('XTRIM', history, 'MINID', minid)
end

if dedupe ~= nil then
  redis.call('SET', dedupe, offset, 'PX', dedupe_ms)
end

local ts = string.match(offset, '^(%d+)-')
local message = '{"topic":' .. cjson.encode(topic) .. ',"offset":"' .. offset .. '","ts":' .. ts ..
  ',"origin":' .. cjson.encode(origin)
if key ~= '' then
  message = message .. ',"key":' .. cjson.encode(key)
end
if target ~= '' then
  message = message .. ',"target":' .. target
end
message = message .. ',"data":' .. data .. '}'
redis.call('PUBLISH', channel, message)
return { 1, offset }
