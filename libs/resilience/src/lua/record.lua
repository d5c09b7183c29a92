--[[
  Record the outcome of an admitted call in the breaker.
  KEYS[1] breaker hash   KEYS[2] trial permits
  ARGV[1] job id
  ARGV[2] outcome: 'success' | 'failure' | 'neutral' (neutral: frees a trial permit, changes nothing)
  ARGV[3] failureThreshold
  ARGV[4] now override in ms ('' = Redis TIME)
  ARGV[5] ttl ms for the breaker hash (it is dropped when idle and closed)
  Returns { stateBefore, stateAfter, failures }
]]
local now = clock(ARGV[4])
local threshold = tonumber(ARGV[3])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local wasTrial = redis.call('ZREM', KEYS[2], ARGV[1]) == 1
local outcome = ARGV[2]
local after = state

if outcome == 'success' then
  if state == 'half_open' then
    if wasTrial then
      after = 'closed'
      redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'closedAt', now)
      redis.call('DEL', KEYS[2])
    end
  elseif state == 'closed' then
    redis.call('HSET', KEYS[1], 'failures', 0)
  end
  redis.call('HINCRBY', KEYS[1], 'successes', 1)
elseif outcome == 'failure' then
  redis.call('HINCRBY', KEYS[1], 'failuresTotal', 1)
  if state == 'half_open' and wasTrial then
    after = 'open'
    redis.call('HSET', KEYS[1], 'state', 'open', 'openedAt', now)
    redis.call('DEL', KEYS[2])
  elseif state == 'closed' then
    local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
    if failures >= threshold then
      after = 'open'
      redis.call('HSET', KEYS[1], 'state', 'open', 'openedAt', now)
    end
  end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
return { state, after, tonumber(redis.call('HGET', KEYS[1], 'failures') or '0') }
