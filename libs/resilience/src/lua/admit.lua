--[[
  Admit one call to a service: circuit breaker first, then the token bucket. One atomic step,
  Redis server time as the clock, so every worker process sees the same limits.

  KEYS[1] breaker hash  {state, failures, successes, openedAt}
  KEYS[2] trial permits (sorted set: member = job id, score = permit expiry ms)
  KEYS[3] bucket hash   {tokens, ts}
  ARGV[1] job id
  ARGV[2] bucket capacity (burstLimit)
  ARGV[3] refill per second (requestsPerMinute / 60)
  ARGV[4] recoveryTimeout ms
  ARGV[5] halfOpenMaxCalls
  ARGV[6] permit ttl ms (how long a trial permit lives if its holder dies mid-call)
  ARGV[7] now override in ms ('' = Redis TIME; tests move time with it)
  ARGV[8] longest wait the caller accepts for a token, ms (its deadline); -1 = never reserve
  ARGV[9] the time (ms, Redis clock) of the token the caller reserved earlier, or '' (none).
          Holding one, the caller skips the bucket, but not before that time: a worker whose
          clock runs ahead may bring a delayed job back early, and must not spend its token early.
          Nor long after it (see below).
  ARGV[10] lease wanted: extra tokens the caller would spend locally (AdmissionLeases); 0 = none.
          Granted only to a call admitted from the bucket while the circuit is closed with no
          failures counted, and at most 1/LEASE_SHARE of the tokens left: real tokens, never debt.

  Returns { verdict, waitMs, state, halfOpened, tokens*1000, slotAt, failures, leased }
    verdict (AdmitVerdict in scripts.ts)
            1 = Admitted
            2 = CircuitOpen: try again in waitMs
            3 = RateLimited: no token within the caller's wait (next one in waitMs); nothing taken
            4 = Reserved: a future token is taken now (or the reserved one is not due yet); call
                again in waitMs with ARGV[9] = the slot time returned last
    state   'closed' | 'open' | 'half_open' (after this call)
    halfOpened 1 when this call moved the breaker from open to half_open, else 0
    tokens  -1 (TOKENS_NOT_READ) when the bucket was not consulted
    slotAt  for Reserved: when the reserved token is due (Redis clock); 0 for Admitted
    failures for Admitted: the consecutive failures counted when the call was admitted (a success
            on a closed circuit with none changes nothing: the worker then records nothing)
    leased  for Admitted: the extra tokens taken for the caller's lease (0 when none)

  Reservations let tokens go below zero: the bucket is a debt the refill pays back, so the calls
  made never exceed burstLimit + rate x elapsed, and a job waits exactly once, for its own token
  (no herd of waiting jobs re-checking the bucket every time a token appears).
]]
local now = clock(ARGV[7])
local capacity = tonumber(ARGV[2])
local refillPerMs = tonumber(ARGV[3]) / 1000
local recovery = tonumber(ARGV[4])
local halfOpenMax = tonumber(ARGV[5])
local permitTtl = tonumber(ARGV[6])
local maxWait = tonumber(ARGV[8])
local reservedAt = tonumber(ARGV[9])
local holdsToken = reservedAt ~= nil
local leaseWanted = tonumber(ARGV[10]) or 0
-- A lease takes at most this share of the tokens left: a bucket of fewer than LEASE_SHARE tokens
-- (after this call's) is never leased from, so a small bucket admits exactly as without leases.
local LEASE_SHARE = 8

local breaker = redis.call('HMGET', KEYS[1], 'state', 'failures')
local state = breaker[1] or 'closed'
local failures = tonumber(breaker[2] or '0')
local halfOpened = 0
if holdsToken and now < reservedAt then
  return { 4, reservedAt - now, state, 0, -1, reservedAt }
end
-- A reserved token is good for a while after its slot (one refill interval, at least a second), not
-- for ever: the refill has paid for it and filled the bucket up again since, so holders that came
-- back late (busy workers, a restart) on top of a full bucket would exceed burstLimit at once.
-- A late holder goes through the bucket like any caller (which may reserve it another token).
if holdsToken and now > reservedAt + math.max(1000, math.ceil(1 / refillPerMs)) then
  holdsToken = false
end
if state == 'open' then
  local openedAt = tonumber(redis.call('HGET', KEYS[1], 'openedAt') or '0')
  if now < openedAt + recovery then
    return { 2, openedAt + recovery - now, 'open', 0 }
  end
  state = 'half_open'
  halfOpened = 1
  redis.call('HSET', KEYS[1], 'state', 'half_open')
  redis.call('DEL', KEYS[2])
end
if state == 'half_open' then
  -- Permits of holders that died mid-call expire and free their place.
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZSCORE', KEYS[2], ARGV[1]) == false and redis.call('ZCARD', KEYS[2]) >= halfOpenMax then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    local wait = 100
    if first[2] then wait = math.max(1, math.min(tonumber(first[2]) - now, recovery)) end
    return { 2, wait, 'half_open', halfOpened }
  end
end

local function takePermit()
  if state == 'half_open' then
    redis.call('ZADD', KEYS[2], now + permitTtl, ARGV[1])
    -- Only ever extend: an earlier holder's longer permit must not vanish with the set.
    if redis.call('PTTL', KEYS[2]) < permitTtl + recovery then
      redis.call('PEXPIRE', KEYS[2], permitTtl + recovery)
    end
  end
end

if holdsToken then
  takePermit()
  return { 1, 0, state, halfOpened, -1, 0, failures, 0 }
end

-- Token bucket: refill since the last step, then take a token now, reserve a future one, or refuse.
local b = redis.call('HMGET', KEYS[3], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then tokens = math.min(capacity, tokens + (now - ts) * refillPerMs) end
ts = math.max(now, ts)
-- The key lives until the bucket would be full again (debt included); then it is not needed.
local function save()
  redis.call('HSET', KEYS[3], 'tokens', tostring(tokens), 'ts', ts)
  redis.call('PEXPIRE', KEYS[3], math.ceil((capacity - tokens) / refillPerMs) + 1000)
end
if tokens < 1 then
  local wait = math.ceil((1 - tokens) / refillPerMs)
  if maxWait >= 0 and wait <= maxWait then
    tokens = tokens - 1
    save()
    return { 4, wait, state, halfOpened, math.floor(tokens * 1000), now + wait }
  end
  save()
  return { 3, wait, state, halfOpened, math.floor(tokens * 1000) }
end
tokens = tokens - 1
local leased = 0
if state == 'closed' and failures == 0 and leaseWanted > 0 then
  leased = math.min(leaseWanted, math.floor(tokens / LEASE_SHARE))
  tokens = tokens - leased
end
save()
takePermit()
return { 1, 0, state, halfOpened, math.floor(tokens * 1000), 0, failures, leased }
