--[[
  Store a request's final result and wake its waiters, once: an ended record is never overwritten
  (a cancelled request stays cancelled even if a late worker finishes).
  KEYS[1] request record   KEYS[2] the sweep's index part of the id (same slot)
  ARGV[1] final state (completed | failed | cancelled)   ARGV[2] result JSON
  ARGV[3] ttl seconds   ARGV[4] channel   ARGV[5] the message's head (id and state), to which the result JSON is appended
  ARGV[6] onlyIfQueued: '1' to require that the record is not active (cancel: queued or waiting for a retry), else '0'
  ARGV[7] request id
  Returns (FinishCode in scripts.ts):
     1  Stored   the result is stored and published
     0  Refused  the record had already ended (or is active and ARGV[6] = '1')
    -1  Missing  there is no record
  The id leaves the sweep's index when its result is stored, and whenever ARGV[6] = '0' (the record
  has ended, or is gone).
]]
local state = redis.call('HGET', KEYS[1], 'state')
local ended = state == 'completed' or state == 'failed' or state == 'cancelled'
if not state or ended or (ARGV[6] == '1' and state ~= 'queued' and state ~= 'retrying') then
  if ARGV[6] == '0' then redis.call('ZREM', KEYS[2], ARGV[7]) end
  if not state then return -1 end
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'result', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('ZREM', KEYS[2], ARGV[7])
redis.call('PUBLISH', ARGV[4], ARGV[5] .. ARGV[2])
return 1
