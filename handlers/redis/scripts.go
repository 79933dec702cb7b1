package redis

import goredis "github.com/redis/go-redis/v9"

// Every script touches only keys of one session, which the layouts place in
// one cluster slot. Scripts return strings and integers only (never Lua
// false inside a table) so RESP2 and RESP3 clients decode them alike.

// loadScript returns {data, pttl, v, h, m} as one atomic snapshot, or an
// empty array when the session does not exist. The version is decided in
// Go so the SHA-1 of the data is not computed on Redis's single thread.
var loadScript = goredis.NewScript(`
local d = redis.call('GET', KEYS[1])
if not d then return {} end
local t = redis.call('PTTL', KEYS[1])
local m = redis.call('HMGET', KEYS[2], 'v', 'h', 'm')
return {d, t, m[1] or '', m[2] or '', m[3] or ''}
`)

// saveScript is the compare-and-swap. ARGV: kind ('0' absent, 'c' counter,
// 'h' content hash), expected value (decimal counter or 13 hex digits),
// data, SHA-1 hex of data, meta blob, px (ms; 0 none; <0 already expired),
// meta grace (ms), seed for a fresh counter, write id. Returns the new
// version or -1. go-redis re-sends a command whose connection broke before
// the reply arrived; the write id recognises that replay of a save that
// already succeeded and reports its version instead of a false mismatch.
var saveScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local m = redis.call('HMGET', KEYS[2], 'v', 'h', 'w')
local mv, mh, mw = m[1], m[2], m[3]
local function lost()
  if cur and mv and mw == ARGV[9] and mh == redis.sha1hex(cur) then return tonumber(mv) end
  return -1
end
local kind = ARGV[1]
if kind == '0' then
  if cur then return lost() end
elseif kind == 'c' then
  if not cur or not mv or mv ~= ARGV[2] or mh ~= redis.sha1hex(cur) then return lost() end
else
  if not cur then return -1 end
  local h = redis.sha1hex(cur)
  if (mv and mh == h) or string.sub(h, 1, 13) ~= ARGV[2] then return lost() end
end
local nv
local old = mv and tonumber(mv)
if kind == 'c' or (old and old >= tonumber(ARGV[8])) then
  nv = redis.call('HINCRBY', KEYS[2], 'v', 1)
else
  redis.call('HSET', KEYS[2], 'v', ARGV[8])
  nv = tonumber(ARGV[8])
end
local px = tonumber(ARGV[6])
if px < 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return nv
end
redis.call('HSET', KEYS[2], 'h', ARGV[4], 'm', ARGV[5], 'w', ARGV[9])
if px > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', px)
  redis.call('PEXPIRE', KEYS[2], px + tonumber(ARGV[7]))
else
  redis.call('SET', KEYS[1], ARGV[3])
  redis.call('PERSIST', KEYS[2])
end
return nv
`)

// touchScript moves the expiry of data and meta. ARGV: px (0 none, <0
// expire now), meta grace. Returns 0 when the session does not exist.
var touchScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local px = tonumber(ARGV[1])
if px < 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
elseif px == 0 then
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
else
  redis.call('PEXPIRE', KEYS[1], px)
  redis.call('PEXPIRE', KEYS[2], px + tonumber(ARGV[2]))
end
return 1
`)

var deleteScript = goredis.NewScript(`
local n = redis.call('EXISTS', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
return n
`)

// Lock scripts. KEYS[1] is the lock (value: holder token, PX lease),
// KEYS[2] the FIFO queue of waiting tokens. A waiter's liveness key
// <tag>:a:<token> (PX its remaining wait) and wake list <tag>:w:<token>
// share the lock's hash tag; they are derived in the script because their
// names depend on which waiter is at the head of the queue.
const lockHandoff = `
local function handoff(L, Q, tag, claim)
  for i = 1, 1000 do
    local t = redis.call('LPOP', Q)
    if not t then return false end
    if redis.call('EXISTS', tag .. ':a:' .. t) == 1 then
      redis.call('SET', L, t, 'PX', claim)
      local w = tag .. ':w:' .. t
      redis.call('RPUSH', w, '1')
      redis.call('PEXPIRE', w, claim)
      -- The next waiter re-arms its safety timeout on the short claim
      -- window, so a hand-off to a waiter that died is noticed promptly.
      local n = redis.call('LINDEX', Q, 0)
      if n then
        local nw = tag .. ':w:' .. n
        redis.call('RPUSH', nw, '0')
        redis.call('PEXPIRE', nw, claim)
      end
      return true
    end
  end
  return false
end
`

// lockAcquireScript: ARGV token, lease ms, wait ms (liveness), claim ms,
// tag. Returns {1, 0} when the caller holds the lock, {0, pttl} when it is
// queued behind a holder whose lease ends in pttl ms (-1: no expiry).
var lockAcquireScript = goredis.NewScript(lockHandoff + `
local L, Q, tok, tag = KEYS[1], KEYS[2], ARGV[1], ARGV[5]
local cur = redis.call('GET', L)
local function take()
  redis.call('SET', L, tok, 'PX', ARGV[2])
  redis.call('DEL', tag .. ':a:' .. tok, tag .. ':w:' .. tok)
  redis.call('LREM', Q, 0, tok)
  return {1, 0}
end
if cur == tok then return take() end
if not cur then
  local mine = true
  for i = 1, 1000 do
    local h = redis.call('LINDEX', Q, 0)
    if not h or h == tok then break end
    if redis.call('EXISTS', tag .. ':a:' .. h) == 1 then
      handoff(L, Q, tag, ARGV[4])
      mine = false
      break
    end
    redis.call('LPOP', Q)
  end
  if mine then return take() end
end
redis.call('SET', tag .. ':a:' .. tok, '1', 'PX', ARGV[3])
if not redis.call('LPOS', Q, tok) then redis.call('RPUSH', Q, tok) end
if redis.call('PTTL', Q) < tonumber(ARGV[3]) then redis.call('PEXPIRE', Q, ARGV[3]) end
return {0, redis.call('PTTL', L)}
`)

// lockReleaseScript: ARGV token, claim ms, tag. Deletes the lock only if
// the caller still holds it and hands it to the first live waiter.
var lockReleaseScript = goredis.NewScript(lockHandoff + `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
handoff(KEYS[1], KEYS[2], ARGV[3], ARGV[2])
return 1
`)

// lockCancelScript: a waiter gives up (timeout, cancel). If the lock was
// handed to it meanwhile it passes the lock on instead of sitting on it.
var lockCancelScript = goredis.NewScript(lockHandoff + `
local tok, tag = ARGV[1], ARGV[3]
redis.call('LREM', KEYS[2], 0, tok)
redis.call('DEL', tag .. ':a:' .. tok, tag .. ':w:' .. tok)
if redis.call('GET', KEYS[1]) == tok then
  redis.call('DEL', KEYS[1])
  handoff(KEYS[1], KEYS[2], tag, ARGV[2])
end
return 0
`)

// lockExtendScript: ARGV token, ttl ms. Moves the lease of a lock the
// caller still holds; 0 when it does not.
var lockExtendScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)
