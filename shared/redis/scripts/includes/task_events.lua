-- Task status changes on the live feed's `tasks` topic, written by the
-- script that makes the change (see feed.lua). The message key is the task
-- id, so a client can follow one task (`tasks:<id>`). The data holds id,
-- status, type, attempts and max_attempts (when known) and the change's
-- extra fields (run_at, worker, flags); run_at (epoch ms in the task hash) is
-- written as ISO 8601 like every other time of the API (iso_time.lua).
-- Results, payloads and error texts are never published: they can be large
-- and are private to the task's enqueuer and admins (every reader of tasks
-- may follow this topic); GET /v1/tasks/<id> shows them to those who may see
-- them. Only the fixed fields below and the fragments the scripts build with
-- task_event_extra() can reach the topic, so no caller can pass an error or a
-- reason through.
--
-- The data is built as text rather than through a Lua table and
-- cjson.encode (building and encoding a table per event cost about as much
-- as the XADD that stores it), and each type's, worker's and time's JSON form
-- is computed once per script call, which a batch of 500 tasks shares (ids
-- are not cached: each is used once). Measured in docs/benchmarks.md, Design
-- measurements.
-- @include "feed"
-- @include "iso_time"
local task_event_json = {}
local function task_event_string(s)
  local j = task_event_json[s]
  if j == nil then
    j = cjson.encode(s)
    task_event_json[s] = j
  end
  return j
end

local task_event_times = {}
local function task_event_time(ms)
  local j = task_event_times[ms]
  if j == nil then
    j = '"' .. iso_ms(ms) .. '"'
    task_event_times[ms] = j
  end
  return j
end

-- One extra field as a JSON fragment (',"name":value') for task_event():
-- strings are JSON-encoded, numbers and booleans written as they are, and a
-- field named run_at (epoch ms) becomes ISO 8601. nil values give "".
local function task_event_extra(name, value)
  if value == nil then
    return ''
  end
  if name == 'run_at' then
    return ',"run_at":' .. task_event_time(tonumber(value))
  end
  if type(value) == 'string' then
    return ',"' .. name .. '":' .. task_event_string(value)
  end
  return ',"' .. name .. '":' .. tostring(value)
end

-- Publishes one status change: `task_type` (string or nil), `attempts` and
-- `max_attempts` (numbers or nil) and `extra` (fragments of
-- task_event_extra(), concatenated, or "").
local function task_event(feed, id, status, task_type, attempts, max_attempts, extra)
  if feed == nil then
    return
  end
  local data = '{"id":' .. cjson.encode(id) .. ',"status":"' .. status .. '"'
  if task_type then
    data = data .. ',"type":' .. task_event_string(task_type)
  end
  if attempts then
    data = data .. ',"attempts":' .. string.format('%d', attempts)
  end
  if max_attempts then
    data = data .. ',"max_attempts":' .. string.format('%d', max_attempts)
  end
  feed_append(feed, id, '', data .. (extra or '') .. '}')
end
