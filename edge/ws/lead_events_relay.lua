--[[
  One leadership step of the lead-event relay (edge/ws/lead_events_relay.ts):
  takes or renews the lease that lets one relay publish, and lets the holder
  record its progress in the same call. The write is fenced by the lease, so
  a relay that lost it (paused past its expiry) can never overwrite the
  progress of the relay that took over.

  KEYS[1] lease: string holding the leader's token; expires unless renewed
  KEYS[2] state hash: progress (JSON, opaque here), at (ms of the last write,
          Redis clock), by (the writer's token)

  ARGV[1] token of the calling relay (unique per start)
  ARGV[2] lease duration ms; 0 releases a held lease (after the write)
  ARGV[3] progress to record, or "" for none; recorded only when the caller
          already held the lease

  Returns {1, progress, at, now}   held: renewed (or released) and ARGV[3]
                                   recorded; then the recorded progress ("" when
                                   none) and when it was written (0 when none)
          {2, progress, at, now}   taken now (it was free), the same answer.
                                   ARGV[3] is NOT recorded: the caller lost the
                                   lease in between, so another relay may have
                                   moved on since the caller's progress was made
          {0, holder, 0, now}      another relay holds the lease (holder "" when a
                                   release found it free); nothing written
]]
-- @include "now_ms"
local lease = KEYS[1]
local state = KEYS[2]
local token = ARGV[1]
local lease_ms = tonumber(ARGV[2])
local progress = ARGV[3]

local now = now_ms()
local holder = redis.call('GET', lease)

if holder == token then
  if progress ~= '' then
    redis.call('HSET', state, 'progress', progress, 'at', now, 'by', token)
  end
  if lease_ms > 0 then
    redis.call('PEXPIRE', lease, lease_ms)
  else
    redis.call('DEL', lease)
  end
  local recorded = redis.call('HMGET', state, 'progress', 'at')
  return { 1, recorded[1] or '', tonumber(recorded[2] or '0'), now }
end

if holder or lease_ms == 0 then
  return { 0, holder or '', 0, now }
end

redis.call('SET', lease, token, 'PX', lease_ms)
local recorded = redis.call('HMGET', state, 'progress', 'at')
return { 2, recorded[1] or '', tonumber(recorded[2] or '0'), now }
