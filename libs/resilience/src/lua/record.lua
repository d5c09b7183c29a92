--[[
  Record the outcome of an admitted call in the breaker.
  KEYS[1] breaker hash   KEYS[2] trial permits
  ARGV[1] job id
  ARGV[2] outcome: 'success' | 'failure' | 'neutral' (neutral: frees a trial permit, changes nothing)
  ARGV[3] failureThreshold
  ARGV[4] now override in ms ('' = Redis TIME)
  ARGV[5] ttl ms for the breaker hash when closed (it is dropped when idle and closed; open or
          half-open it has none: forgotten, it would read as closed and let every call through)
  Returns { stateBefore, stateAfter, failures }

  What changes nothing is not sent at all (breakerMustRecord in policy.ts): a neutral outcome, or a
  success with no failures counted, of a call admitted while the circuit was closed. The clock is read only for a change of
  state, and the trial permits only while half-open: every way out of half-open deletes them, so no
  other state has any. Successes are counted by the request stats, not here.
]]
local threshold = tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'state', 'failures')
local state = h[1] or 'closed'
local failures = tonumber(h[2] or '0')
local wasTrial = state == 'half_open' and redis.call('ZREM', KEYS[2], ARGV[1]) == 1
local outcome = ARGV[2]
local after = state

if outcome == 'success' then
  if state == 'half_open' then
    if wasTrial then
      after = 'closed'
      failures = 0
      redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'closedAt', clock(ARGV[4]))
      redis.call('DEL', KEYS[2])
    end
  elseif state == 'closed' and failures ~= 0 then
    failures = 0
    redis.call('HSET', KEYS[1], 'failures', 0)
  end
elseif outcome == 'failure' then
  redis.call('HINCRBY', KEYS[1], 'failuresTotal', 1)
  if state == 'half_open' and wasTrial then
    after = 'open'
    redis.call('HSET', KEYS[1], 'state', 'open', 'openedAt', clock(ARGV[4]))
    redis.call('DEL', KEYS[2])
  elseif state == 'closed' then
    failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
    if failures >= threshold then
      after = 'open'
      redis.call('HSET', KEYS[1], 'state', 'open', 'openedAt', clock(ARGV[4]))
    end
  end
end
if after == 'closed' then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
else
  redis.call('PERSIST', KEYS[1])
end
return { state, after, failures }
