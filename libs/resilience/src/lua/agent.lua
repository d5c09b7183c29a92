--[[
  Hold one request against an agent's quota (its own, or its use of one service), or say why not.
  One atomic step: drop lapsed holds, check the cap on requests in flight, take a token, hold the id.
  KEYS[1] token bucket hash {tokens, ts}
  KEYS[2..] hold sets: sorted sets of request ids scored by when each hold lapses (ms). A request is
           held in one of them; a service's sets are one per priority class, high first, so that the
           holds in the sets up to a request's own are the requests of the agent it queues behind.
  ARGV[1] request id   ARGV[2] bucket capacity (0: no rate limit)   ARGV[3] tokens per ms
  ARGV[4] most requests in flight (0: no cap)   ARGV[5] when the hold lapses (ms)
  ARGV[6] clock override ('' = TIME)   ARGV[7] the set the request goes in (1 = KEYS[2])
  Returns { verdict, n, inFlight } (AgentVerdict in agents.ts):
     1 Held         n = the holds in sets 1..ARGV[7] before this one (the request's fair-share tier)
     2 RateLimited  n = ms until a token
     3 InFlightCap  n = 0
  A hold lapses (a release that never came, from a process that died, frees its slot then) after
  the request's deadline: by then the request has ended.
]]
local id = ARGV[1]
local capacity = tonumber(ARGV[2])
local refillPerMs = tonumber(ARGV[3])
local maxInFlight = tonumber(ARGV[4])
local lapseAt = tonumber(ARGV[5])
local now = clock(ARGV[6])
local own = tonumber(ARGV[7])

local tier, inFlight = 0, 0
for i = 2, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  local n = redis.call('ZCARD', KEYS[i])
  inFlight = inFlight + n
  if i - 1 <= own then tier = tier + n end
end
if maxInFlight > 0 and inFlight >= maxInFlight then return { 3, 0, inFlight } end

if capacity > 0 then
  local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  local tokens, ts = tonumber(b[1]), tonumber(b[2])
  if tokens == nil or ts == nil then tokens, ts = capacity, now end
  if now > ts then tokens = math.min(capacity, tokens + (now - ts) * refillPerMs) end
  -- Within a hair of a token is a token: the float sum of refills must not add a millisecond.
  if tokens < 1 - 1e-9 then return { 2, math.max(1, math.ceil((1 - tokens) / refillPerMs - 1e-6)), inFlight } end
  tokens = tokens - 1
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', math.max(now, ts))
  -- The key lives until the bucket would be full again; then it is not needed.
  redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / refillPerMs) + 1000)
end

local set = KEYS[1 + own]
redis.call('ZADD', set, lapseAt, id)
-- The set lives as long as its latest hold.
local life = lapseAt - now + 1000
if redis.call('PEXPIRE', set, life, 'GT') == 0 and redis.call('PTTL', set) == -1 then redis.call('PEXPIRE', set, life) end
return { 1, tier, inFlight + 1 }
