--[[
  A worker takes the job: mark it active unless it already ended (cancelled while queued).
  KEYS[1] request record   ARGV[1] now (ms)   ARGV[2] state to set (active | retrying)
  Returns { state, firstStartedAt } — state is the one before this call when it had ended.
]]
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return { 'missing', false } end
if state == 'completed' or state == 'failed' or state == 'cancelled' then
  return { state, redis.call('HGET', KEYS[1], 'startedAt') }
end
redis.call('HSETNX', KEYS[1], 'startedAt', ARGV[1])
redis.call('HSET', KEYS[1], 'state', ARGV[2])
return { ARGV[2], redis.call('HGET', KEYS[1], 'startedAt') }
