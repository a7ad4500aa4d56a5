--[[
  Leases rate-limit budget to one edge (edge/rate_limit/lease_store.ts): in
  one step it gives back the unused tokens of the edge's previous lease on
  this budget, then grants up to the tokens asked for. The counts are the ones
  @upstash/ratelimit 2.2 keeps (same keys, same arithmetic, docs/gateway.md),
  so a limit means the same with leasing on or off; only the clock differs:
  this script reads Redis's.

  KEYS[1] budget: the token bucket's hash; for the two windowed algorithms the
          prefix of the per-window counters, named `<KEYS[1]>:<window index>`
          (built here because the index depends on Redis's clock; they share
          KEYS[1]'s hash tag, so one cluster slot)
  KEYS[2] sorted set of the edges that took a lease lately (edge id → ms)

  ARGV[1]  algorithm: sliding_window | fixed_window | token_bucket
  ARGV[2]  limit (token bucket: capacity)
  ARGV[3]  window in ms (token bucket: refill interval)
  ARGV[4]  token bucket: tokens added per interval (ignored otherwise)
  ARGV[5]  need: tokens wanted for requests waiting now (0: only give back)
  ARGV[6]  spare: tokens one grant may hold at most, the needed ones
           included (0: grant exactly `need`, no lease)
  ARGV[7]  fraction: share of the available budget one lease may take, split
           over the edges seen within two lease lifetimes
  ARGV[8]  longest lease lifetime in ms
  ARGV[9]  edge id
  ARGV[10] tokens given back (unused; 0: none)
  ARGV[11] window index the given-back tokens were taken in (windowed only)

  Returns {code, granted, remaining, reset_ms, ttl_ms, window}:
    code  1 granted: `granted` ≥ 1 tokens, valid for `ttl_ms`
    code  0 exhausted: nothing available until about `reset_ms`
    code  2 returned: a give-back-only call (need 0)
  remaining: budget left in Redis after the grant; reset_ms: end of the
  window (token bucket: the next refill), Redis epoch ms; ttl_ms: the lease
  ends no later than the window it was counted in (never crosses into the
  next one, where a windowed count would weigh it less); window: the index the
  grant was counted in, to be passed back with unused tokens.
]]
-- @include "now_ms"
local budget_key = KEYS[1]
local edges_key = KEYS[2]
local algorithm = ARGV[1]
local limit = tonumber(ARGV[2])
local window_ms = tonumber(ARGV[3])
local refill = tonumber(ARGV[4])
local need = tonumber(ARGV[5])
local spare = tonumber(ARGV[6])
local fraction = tonumber(ARGV[7])
local max_ttl = tonumber(ARGV[8])
local edge_id = ARGV[9]
local given_back = tonumber(ARGV[10])
local given_back_window = ARGV[11]

local GRANTED, EXHAUSTED, RETURNED = 1, 0, 2
local now = now_ms()

-- Edges competing for this budget: each lease is split over them, so one
-- edge cannot sit on the budget the others need. A call that cannot grant
-- more than it needs leases nothing and skips the bookkeeping.
local function edges_seen()
  if spare <= need then return 1 end
  redis.call('ZADD', edges_key, now, edge_id)
  redis.call('ZREMRANGEBYSCORE', edges_key, '-inf', now - 2 * max_ttl)
  redis.call('PEXPIRE', edges_key, 2 * max_ttl)
  return math.max(1, redis.call('ZCARD', edges_key))
end

local function grant_size(available)
  if available <= 0 then return 0 end
  local share = math.floor(available * fraction / edges_seen())
  return math.min(available, math.max(need, math.min(spare, share)))
end

if algorithm == 'token_bucket' then
  local bucket = redis.call('HMGET', budget_key, 'refilledAt', 'tokens')
  local exists = bucket[1] ~= false
  local refilled_at, tokens = now, limit
  if exists then
    refilled_at = tonumber(bucket[1])
    tokens = tonumber(bucket[2])
  end
  if now >= refilled_at + window_ms then
    local refills = math.floor((now - refilled_at) / window_ms)
    tokens = math.min(limit, tokens + refills * refill)
    refilled_at = refilled_at + refills * window_ms
  end
  -- A missing bucket is a full one: nothing to give back to.
  if exists and given_back > 0 then tokens = math.min(limit, tokens + given_back) end
  local granted = 0
  if need > 0 then granted = grant_size(tokens) end
  tokens = tokens - granted
  if exists or granted > 0 then
    if tokens >= limit then
      redis.call('DEL', budget_key)
    else
      redis.call('HSET', budget_key, 'refilledAt', refilled_at, 'tokens', tokens)
      redis.call('PEXPIRE', budget_key, math.ceil((limit - tokens) / refill) * window_ms)
    end
  end
  local reset = refilled_at + window_ms
  if need <= 0 then return { RETURNED, 0, tokens, reset, 0, 0 } end
  if granted == 0 then return { EXHAUSTED, 0, 0, reset, 0, 0 } end
  return { GRANTED, granted, tokens, reset, math.min(max_ttl, window_ms), 0 }
end

local window = math.floor(now / window_ms)
if given_back > 0 then
  -- Only what is still counted: a counter that expired holds nothing to lower.
  local key = budget_key .. ':' .. given_back_window
  local counted = tonumber(redis.call('GET', key)) or 0
  local n = math.min(counted, given_back)
  if n > 0 then redis.call('DECRBY', key, n) end
end
local reset = (window + 1) * window_ms
if need <= 0 then return { RETURNED, 0, 0, reset, 0, window } end

local current_key = budget_key .. ':' .. window
local current = tonumber(redis.call('GET', current_key)) or 0
local weighted = 0
if algorithm == 'sliding_window' then
  -- @upstash/ratelimit's approximation: the previous window, weighted by the
  -- share of it the sliding window still covers, rounded down.
  local previous = tonumber(redis.call('GET', budget_key .. ':' .. (window - 1))) or 0
  weighted = math.floor((1 - (now % window_ms) / window_ms) * previous)
end
local available = limit - weighted - current
local granted = grant_size(available)
if granted == 0 then return { EXHAUSTED, 0, 0, reset, 0, window } end
local counted = redis.call('INCRBY', current_key, granted)
if counted == granted then
  -- The expiries @upstash/ratelimit sets: the sliding window's counter must
  -- outlive the next window, which weighs it in.
  if algorithm == 'sliding_window' then
    redis.call('PEXPIRE', current_key, window_ms * 2 + 1000)
  else
    redis.call('PEXPIRE', current_key, window_ms)
  end
end
return { GRANTED, granted, available - granted, reset, math.min(max_ttl, reset - now), window }
