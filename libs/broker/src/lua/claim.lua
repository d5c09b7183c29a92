--[[
  Claim a request id (the idempotency key) for a new job, or join the one that holds it.
  KEYS[1] request record (hash)   KEYS[2] the sweep's index part of the id (same slot)
  ARGV[1] body hash   ARGV[2] service   ARGV[3] ttl seconds   ARGV[4] accepted-at (ms)
  ARGV[5] deadline (ms)   ARGV[6] correlation id   ARGV[7] agent id ('' when anonymous)
  ARGV[8] request id
  Returns (ClaimCode in scripts.ts):
    { 0, 'queued' }                Created   a new record
    { 1, record }                  Joined    the record that holds the id, as HGETALL gives it (its result
                                             once it has ended: see stored-result.ts)
    { 2 }                          Conflict  the id is held by a request with another body
  A created record enters the sweep's index, scored by its deadline (a joined one is in it already,
  or has ended).
]]
local hash = redis.call('HGET', KEYS[1], 'hash')
if hash then
  if hash ~= ARGV[1] then return { 2 } end
  return { 1, redis.call('HGETALL', KEYS[1]) }
end
-- An anonymous caller's record has no agentId field (an empty one would cost a whole allocation
-- size class of the record).
if ARGV[7] == '' then
  redis.call('HSET', KEYS[1], 'hash', ARGV[1], 'service', ARGV[2], 'state', 'queued',
    'acceptedAt', ARGV[4], 'deadline', ARGV[5], 'correlationId', ARGV[6])
else
  redis.call('HSET', KEYS[1], 'hash', ARGV[1], 'service', ARGV[2], 'state', 'queued',
    'acceptedAt', ARGV[4], 'deadline', ARGV[5], 'correlationId', ARGV[6], 'agentId', ARGV[7])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[8])
return { 0, 'queued' }
