-- Appending to the live feed from inside a script: ws_publish.lua publishes
-- one message this way, and the queue's scripts publish task status changes
-- in the same step as the change (task_events.lua), so the feed can never
-- show a change that did not happen, nor two changes of one task out of order.
--
-- feed_new() builds a feed from its keys and limits, feed_open() from the
-- JSON spec a caller passes ({history, meta, channel, topic, origin, max_len,
-- max_age_ms}; "" means publishing is off and returns nil); feed_append()
-- adds one message, feed_trim() trims the history once, after the script's
-- appends.
--
-- The history is trimmed oldest first, to `max_len` entries and `max_age_ms`.
-- Redis does not remember what trimming removed, so the meta hash does:
-- `trimmed` is the newest id ever trimmed away and `created` the first id of
-- this history (a Redis that lost its data starts a new one);
-- ws_read_history.lua decides from both whether a reader missed anything.
-- @include "stream_id"
local function feed_new(history, meta, channel, topic, origin, max_len, max_age_ms)
  return {
    history = history, meta = meta, channel = channel, origin = origin,
    max_len = tonumber(max_len), max_age_ms = tonumber(max_age_ms), appended = 0,
    -- The JSON around each message's offset, encoded once per script call.
    head = '{"topic":' .. cjson.encode(topic) .. ',"offset":"',
    origin_part = ',"origin":' .. cjson.encode(origin),
  }
end

local function feed_open(spec)
  if spec == nil or spec == '' then
    return nil
  end
  local f = cjson.decode(spec)
  return feed_new(f.history, f.meta, f.channel, f.topic, f.origin, f.max_len, f.max_age_ms)
end

-- Appends `data` (JSON text, inserted verbatim) to the history and PUBLISHes
-- it on the feed channel; key and target are "" when absent. Returns the offset.
-- An absent key or target is left out of the history entry (readers take a
-- missing field as "": ws_read_history.lua): fewer bytes per entry, and the
-- task events, which never have a target, skip a field pair
-- (docs/benchmarks.md, Design measurements).
local function feed_append(f, key, target, data)
  local offset
  if target ~= '' then
    offset = redis.call('XADD', f.history, '*', 'd', data, 'o', f.origin, 'k', key, 't', target)
  elseif key ~= '' then
    offset = redis.call('XADD', f.history, '*', 'd', data, 'o', f.origin, 'k', key)
  else
    offset = redis.call('XADD', f.history, '*', 'd', data, 'o', f.origin)
  end
  if f.appended == 0 then
    redis.call('HSETNX', f.meta, 'created', offset)
  end
  f.appended = f.appended + 1
  local ts = string.sub(offset, 1, string.find(offset, '-', 1, true) - 1)
  local message = f.head .. offset .. '","ts":' .. ts .. f.origin_part
  if key ~= '' then
    message = message .. ',"key":' .. cjson.encode(key)
  end
  if target ~= '' then
    message = message .. ',"target":' .. target
  end
  redis.call('PUBLISH', f.channel, message .. ',"data":' .. data .. '}')
  return offset
end

-- Trims the history to `max_len` entries and `max_age_ms`. Trimming costs
-- more per entry than appending, so it waits until the history is over by
-- 1% of either limit (at least one entry): most calls only look, and the
-- history holds up to 1% more than its limits (more to recover from, never
-- less).
local function feed_trim(f, now)
  if f == nil or f.appended == 0 then
    return
  end
  local minid_ms = now - f.max_age_ms
  local len = redis.call('XLEN', f.history)
  local oldest = redis.call('XRANGE', f.history, '-', '+', 'COUNT', 1)[1]
  local oldest_ms = oldest and tonumber(string.match(oldest[1], '^(%d+)-')) or now
  if len - f.max_len <= math.floor(f.max_len / 100) and oldest_ms >= minid_ms - math.floor(f.max_age_ms / 100) then
    return
  end
  local minid = minid_ms .. '-0'
  if len > f.max_len then
    local first = redis.call('XRANGE', f.history, '-', '+', 'COUNT', len - f.max_len + 1)
    local keep_from = first[#first][1]
    if stream_id_before(minid, keep_from) then
      minid = keep_from
    end
  end
  local gone = redis.call('XREVRANGE', f.history, '(' .. minid, '-', 'COUNT', 1)
  if #gone > 0 then
    redis.call('HSET', f.meta, 'trimmed', gone[1][1])
    redis.call('XTRIM', f.history, 'MINID', minid)
  end
end
