--[[
  Removes dead-letter entries older than the retention (and their task
  hashes), at most ARGV[4] per call: the scheduled expiry of the DLQ
  (shared/queue/dlq_expiry.ts), so that entries leave on time even when no
  new task dies (dead_letter.lua only trims when one does).

  KEYS[1] dead-letter sorted set (score: failed_at, ms)
  KEYS[2] stats hash

  ARGV[1] key prefix
  ARGV[2] now (ms; the caller's clock, injectable in tests)
  ARGV[3] retention (ms)
  ARGV[4] most entries to remove in this call

  Returns the number of entries removed (less than ARGV[4]: nothing older is left).
]]
local dlq_key = KEYS[1]
local stats_key = KEYS[2]
local prefix = ARGV[1]
local cutoff = tonumber(ARGV[2]) - tonumber(ARGV[3])
local limit = tonumber(ARGV[4])

local victims = redis.call('ZRANGEBYSCORE', dlq_key, '-inf', cutoff, 'LIMIT', 0, limit)
for _, victim in ipairs(victims) do
  local victim_key = prefix .. 'task:' .. victim
  local victim_type = redis.call('HGET', victim_key, 'type')
  redis.call('ZREM', dlq_key, victim)
  if victim_type then
    redis.call('ZREM', prefix .. 'dlq:type:' .. victim_type, victim)
  end
  redis.call('DEL', victim_key)
end
if #victims > 0 then
  redis.call('HINCRBY', stats_key, 'dlq_expired', #victims)
end
return #victims
