--[[
  Prepended to every resilience script: the decision clock is Redis TIME (one clock for every
  process), unless a test passes a fixed time in ms ('' = TIME).
]]
local function clock(override)
  if override ~= '' then return tonumber(override) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
