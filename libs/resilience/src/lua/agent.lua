--[[
  Hold one request against an agent's quota (its own, or its use of one service), or say why not.
  One atomic step: check the cap on requests in flight, take a token, hold the id.
  KEYS[1] token bucket hash {tokens, ts}
  KEYS[2] hold set: the agent's requests held (queued or running), scored rank * BAND + when the hold
          lapses (ms), so that each priority class (rank 1 high, 2 normal, 3 low) is a band of scores
          and the holds of a class or a higher one are one range: the requests a new one comes after.
  ARGV[1] request id   ARGV[2] bucket capacity (0: no rate limit)   ARGV[3] tokens per ms
  ARGV[4] most requests in flight (0: no cap)   ARGV[5] when the hold lapses (ms, the caller's clock)
  ARGV[6] now (the caller's clock, for lapses)   ARGV[7] the request's rank   ARGV[8] set TTL (ms)
  ARGV[9] the bucket's clock override ('' = Redis TIME, one clock for every replica)
  ARGV[10] '1': the id may be held already (a caller's own id), so look first
  Returns { verdict, n, inFlight, added } (AgentVerdict in scripts.ts):
     1 Held         n = the holds in its class or a higher one before it (its fair-share tier);
                    added = 0 when the id was held already (the same request sent again: it takes
                    no token and no second place, and its caller must not release the hold)
     2 RateLimited  n = ms until a token
     3 InFlightCap  n = 0
  A hold lapses after the request's deadline (by then it has ended), so a release that never came
  (a process died) frees its slot: lapsed holds of the request's class and the higher ones are
  dropped on each call, and of every class before refusing at the cap.
]]
local BAND = 1e13
local id = ARGV[1]
local capacity = tonumber(ARGV[2])
local refillPerMs = tonumber(ARGV[3])
local maxInFlight = tonumber(ARGV[4])
local lapseAt = tonumber(ARGV[5])
local now = tonumber(ARGV[6])
local rank = tonumber(ARGV[7])
local base = rank * BAND
local set = KEYS[2]

for r = 1, rank do redis.call('ZREMRANGEBYSCORE', set, r * BAND, r * BAND + now) end
local above = '(' .. string.format('%d', base + BAND)
local tier = redis.call('ZCOUNT', set, '-inf', above)
local inFlight = 0
if ARGV[10] == '1' and redis.call('ZSCORE', set, id) then return { 1, tier - 1, redis.call('ZCARD', set), 0 } end
if maxInFlight > 0 then
  inFlight = redis.call('ZCARD', set)
  if inFlight >= maxInFlight then
    for r = rank + 1, 3 do redis.call('ZREMRANGEBYSCORE', set, r * BAND, r * BAND + now) end
    inFlight = redis.call('ZCARD', set)
    if inFlight >= maxInFlight then return { 3, 0, inFlight } end
    tier = redis.call('ZCOUNT', set, '-inf', above)
  end
end

if capacity > 0 then
  local at = clock(ARGV[9])
  local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  local tokens, ts = tonumber(b[1]), tonumber(b[2])
  if tokens == nil or ts == nil then tokens, ts = capacity, at end
  if at > ts then tokens = math.min(capacity, tokens + (at - ts) * refillPerMs) end
  -- Within a hair of a token is a token: the float sum of refills must not add a millisecond.
  if tokens < 1 - 1e-9 then return { 2, math.max(1, math.ceil((1 - tokens) / refillPerMs - 1e-6)), inFlight } end
  tokens = tokens - 1
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', math.max(at, ts))
  -- The key lives until the bucket would be full again; then it is not needed.
  redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / refillPerMs) + 1000)
end

redis.call('ZADD', set, string.format('%d', base + lapseAt), id)
redis.call('PEXPIRE', set, ARGV[8])
return { 1, tier, inFlight + 1, 1 }
