--[[
  A worker takes the job: mark it active unless it already ended (cancelled while queued).
  KEYS[1] request record   ARGV[1] now (ms)   ARGV[2] state to set (active | retrying | queued)
  ARGV[3] mayCall, '1': a call that must not be repeated (not idempotent) may follow; the record
          keeps the mark until a run clears it ('0') without having called. A later run that finds
          it knows that a run before it may have sent the call and never ended (its worker died).
  Returns { state, firstStartedAt, markedAt|false } — state is the one before this call when it had
  ended, 'missing' (START_MISSING in scripts.ts) when there is no record; markedAt is the mark a
  previous run left.
]]
local rec = redis.call('HMGET', KEYS[1], 'state', 'startedAt', 'calling')
local state = rec[1]
if not state then return { 'missing', false, false } end
if state == 'completed' or state == 'failed' or state == 'cancelled' then
  return { state, rec[2], false }
end
local startedAt = rec[2] or ARGV[1]
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'state', ARGV[2], 'startedAt', startedAt, 'calling', ARGV[1])
else
  redis.call('HSET', KEYS[1], 'state', ARGV[2], 'startedAt', startedAt)
  if rec[3] then redis.call('HDEL', KEYS[1], 'calling') end
end
return { ARGV[2], startedAt, rec[3] or false }
