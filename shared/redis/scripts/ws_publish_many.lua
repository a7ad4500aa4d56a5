--[[
  Publishes several live-feed messages of one topic in order, as
  ws_publish.lua publishes one (includes/feed.lua: each appended to the
  topic's history and PUBLISHed on the feed channel; the history trimmed
  once, after them). For relays that forward many events at once: one call
  instead of one per message, and the messages keep their order.

  KEYS[1] history stream of the topic
  KEYS[2] history meta hash: created, trimmed

  ARGV[1] feed channel
  ARGV[2] topic
  ARGV[3] origin instance id
  ARGV[4] most entries kept in the stream
  ARGV[5] oldest entry kept, ms before now
  ARGV[6…] per message, three values: data (JSON text, inserted verbatim),
           key inside the topic or "", target JSON object text or ""

  Returns the messages' offsets, in order.
]]
-- @include "now_ms"
-- @include "feed"
local feed = feed_new(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
local offsets = {}
for i = 6, #ARGV, 3 do
  offsets[#offsets + 1] = feed_append(feed, ARGV[i + 1], ARGV[i + 2], ARGV[i])
end
feed_trim(feed, now_ms())
return offsets
