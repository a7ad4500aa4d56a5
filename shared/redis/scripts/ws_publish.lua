--[[
  Publishes one live-feed message: appends it to its topic's history stream
  and PUBLISHes it on the feed channel in the same step, so history and live
  delivery can never disagree. The stream id is the message's offset; ids only
  grow, so every subscriber sees one topic's messages in offset order.

  The history is trimmed by whoever appends to it (includes/feed.lua: this
  script, and the queue's scripts for the `tasks` topic), oldest first, to
  `max_len` entries and `max_age_ms`, recording what was trimmed in the meta
  hash for ws_read_history.lua.

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
-- @include "feed"
local dedupe = KEYS[3]
local feed = feed_new(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[4], ARGV[7], ARGV[8])
local data = ARGV[3]
local key = ARGV[5]
local target = ARGV[6]
local dedupe_ms = tonumber(ARGV[9])

if dedupe ~= nil then
  local first = redis.call('GET', dedupe)
  if first then
    return { 0, first }
  end
end

local offset = feed_append(feed, key, target, data)
feed_trim(feed, now_ms())
if dedupe ~= nil then
  redis.call('SET', dedupe, offset, 'PX', dedupe_ms)
end
return { 1, offset }
