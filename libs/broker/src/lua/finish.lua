--[[
  Store a request's final result and wake its waiters, once: an ended record is never overwritten
  (a cancelled request stays cancelled even if a late worker finishes).
  KEYS[1] request record   KEYS[2] the sweep's index part of the id (same slot)
  ARGV[1] final state (completed | failed | cancelled)   ARGV[2] the result's body field ('data',
  'error', or '' for none)   ARGV[3] ttl seconds   ARGV[4] channel   ARGV[5] the message's head (id
  and state)   ARGV[6] onlyIfQueued: '1' to require that the record is not active (cancel: queued or
  waiting for a retry), else '0'   ARGV[7] request id   ARGV[8] the result's JSON before its body
  ARGV[9] the body (JSON)   ARGV[10] the JSON after it   ARGV[11..] metadata field, value pairs
  The record keeps the body and the metadata as fields (stored-result.ts); the message is the head
  and the whole result's JSON, put together here so the body is sent once.
  Returns (FinishCode in scripts.ts):
     1  Stored   the result is stored and published
     0  Refused  the record had already ended (or is active and ARGV[6] = '1')
    -1  Missing  there is no record
  The id leaves the sweep's index when its result is stored, and whenever ARGV[6] = '0' (the record
  has ended, or is gone).
]]
local rec = redis.call('HMGET', KEYS[1], 'state', 'calling')
local state = rec[1]
local ended = state == 'completed' or state == 'failed' or state == 'cancelled'
if not state or ended or (ARGV[6] == '1' and state ~= 'queued' and state ~= 'retrying') then
  if ARGV[6] == '0' then redis.call('ZREM', KEYS[2], ARGV[7]) end
  if not state then return -1 end
  return 0
end
local fields = { 'state', ARGV[1] }
if ARGV[2] ~= '' then
  fields[3] = ARGV[2]
  fields[4] = ARGV[9]
end
for i = 11, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
-- A run's mark (start.lua) means nothing once the request has ended; kept, it would cost the
-- record an allocation size class.
if rec[2] then redis.call('HDEL', KEYS[1], 'calling') end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('ZREM', KEYS[2], ARGV[7])
redis.call('PUBLISH', ARGV[4], ARGV[5] .. ARGV[8] .. ARGV[9] .. ARGV[10])
return 1
