-- Task status changes on the live feed's `tasks` topic, written by the
-- script that makes the change (see feed.lua). The message key is the task
-- id, so a client can follow one task (`tasks:<id>`). `fields` holds what the
-- change knows (type, attempt, max_attempts, run_at, error, …); status and id
-- are added here. Results and payloads are never published: they can be large
-- and private, and GET /v1/tasks/<id> has them.
-- @include "feed"
local function task_event(feed, id, status, fields)
  if feed == nil then
    return
  end
  -- Error texts come from handlers: a feed message stays small.
  for _, name in ipairs({ 'error', 'reason' }) do
    if type(fields[name]) == 'string' and #fields[name] > 1000 then
      fields[name] = string.sub(fields[name], 1, 1000)
    end
  end
  fields.id = id
  fields.status = status
  feed_append(feed, id, '', cjson.encode(fields))
end
