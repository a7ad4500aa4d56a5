-- Task status changes on the live feed's `tasks` topic, written by the
-- script that makes the change (see feed.lua). The message key is the task
-- id, so a client can follow one task (`tasks:<id>`). `fields` holds what the
-- change knows (type, attempts, max_attempts, run_at, flags); status and id
-- are added here, and run_at (epoch ms in the task hash) is written as ISO
-- 8601 like every other time of the API (iso_time.lua). Results, payloads and error texts are never published: they
-- can be large and are private to the task's enqueuer and admins (every
-- reader of tasks may follow this topic); GET /v1/tasks/<id> shows them to
-- those who may see them.
-- @include "feed"
-- @include "iso_time"
local function task_event(feed, id, status, fields)
  if feed == nil then
    return
  end
  -- Defence in depth: no caller passes these, none may reach the topic.
  fields.error = nil
  fields.reason = nil
  fields.id = id
  fields.status = status
  if fields.run_at ~= nil then
    fields.run_at = iso_ms(tonumber(fields.run_at))
  end
  feed_append(feed, id, '', cjson.encode(fields))
end
