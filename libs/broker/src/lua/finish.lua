--[[
  Store a request's final result and wake its waiters, once: an ended record is never overwritten
  (a cancelled request stays cancelled even if a late worker finishes).
  KEYS[1] request record   KEYS[2] the sweep's index part of the id (same slot)
  ARGV[1] final state (completed | failed | cancelled)   ARGV[2] ttl seconds   ARGV[3] channel
  ARGV[4] request id   ARGV[5] the result's JSON up to its id   ARGV[6] the JSON after its id
  ARGV[7] the record's body hash and agent lines (each ending in a newline)
  ARGV[8] PUBLISH, or SPUBLISH for a sharded channel (on a cluster: in the record's slot), or '' to
          publish nothing (the caller publishes once the result has reached the replicas)
  ARGV[9] '1' to take the id out of the sweep's index, '' when it cannot be there (a sync request
          not yet indexed: see RequestRecords.claim)
  A record is text (record-text.ts): its state, body hash and agent on a line each, then the request
  (while it runs) or its result's JSON without the id (once it has ended: the key holds the id).
  The record is replaced in one command that answers what it held; a record that had already ended
  is put back as it was (a script runs whole: nobody sees the replacement), with its TTL renewed.
  The message is `id \n state \n` and the whole JSON, put together here so the result is sent once.
  Returns (FinishCode in scripts.ts):
     1  Stored   the result is stored and published
     0  Refused  the record had already ended
    -1  Missing  there is no record
  With ARGV[9], the id leaves the sweep's index either way.
]]
local held = redis.call('SET', KEYS[1], ARGV[1] .. '\n' .. ARGV[7] .. '{' .. ARGV[6], 'XX', 'GET', 'EX', tonumber(ARGV[2]))
if ARGV[9] ~= '' then redis.call('ZREM', KEYS[2], ARGV[4]) end
if not held then return -1 end
if string.sub(held, 1, 7) ~= 'queued\n' then
  redis.call('SET', KEYS[1], held, 'KEEPTTL')
  return 0
end
if ARGV[8] ~= '' then redis.call(ARGV[8], ARGV[3], ARGV[4] .. '\n' .. ARGV[1] .. '\n' .. ARGV[5] .. ARGV[6]) end
return 1
