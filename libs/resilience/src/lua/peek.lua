--[[
  What the API checks before enqueueing, read-only, in one step (all keys share the {service} tag):
  is the circuit open, how long until a rate-limit token is due for a new job (the jobs already
  waiting take the tokens before it), how deep is the queue.
  KEYS[1] breaker hash   KEYS[2] bucket hash   KEYS[3] BullMQ wait list   KEYS[4] BullMQ prioritized zset
  ARGV[1] capacity   ARGV[2] refill per second   ARGV[3] recoveryTimeout ms   ARGV[4] now override ('' = TIME)
  Returns { openWaitMs, tokenWaitMs, queueDepth }  (0 = no wait)
]]
local now = clock(ARGV[4])
local openWait = 0
local b = redis.call('HMGET', KEYS[1], 'state', 'openedAt')
if b[1] == 'open' then
  openWait = math.max(0, tonumber(b[2] or '0') + tonumber(ARGV[3]) - now)
end
local depth = redis.call('LLEN', KEYS[3]) + redis.call('ZCARD', KEYS[4])
local refillPerMs = tonumber(ARGV[2]) / 1000
local tokens = tonumber(ARGV[1])
local k = redis.call('HMGET', KEYS[2], 'tokens', 'ts')
if k[1] and k[2] then
  tokens = math.min(tokens, tonumber(k[1]) + math.max(0, now - tonumber(k[2])) * refillPerMs)
end
local tokenWait = 0
local needed = depth + 1
if tokens < needed then tokenWait = math.ceil((needed - tokens) / refillPerMs) end
return { openWait, tokenWait, depth }
