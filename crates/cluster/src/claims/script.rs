//! The Lua scripts Redis runs for claims. Redis executes a script
//! atomically, so each change is one compare-and-set plus its stream entry
//! in one round trip.
//!
//! Numbers go back into Redis through `fmt` (`%.0f`): Lua 5.1's numbers
//! are doubles, exact for integers below 2^53 (milliseconds since 1970
//! and counters are far below), and `%.0f` never writes an exponent.

/// One change of one agent's claim.
///
/// KEYS: 1 the agent's hash, 2 the change stream, 3 the sequence counter,
/// 4 the set of agents ever claimed.
/// ARGV: 1 op (`claim`, `renew`, `release`, `reap`), 2 agent id, 3 node
/// (the claimer, the holder renewing or releasing, the reaper), 4 epoch (claim: the epoch the caller last saw; renew and release: the
/// epoch held), 5 lease in milliseconds, 6 the stream's `MAXLEN ~` bound.
///
/// The hash holds `node` (empty when free), `epoch` (the last claim's,
/// kept when free: epochs only grow) and `until` (when the lease runs out,
/// Redis time in milliseconds).
///
/// An `expired` entry also names `by`, the node whose script found the
/// lease run out (ARGV 3): the holder itself, a reaper, or a claimer; so
/// the claim history can say who ended a dead node's holding.
///
/// Replies: `{'ok', epoch, until, at, seq}`; `{'taken', node, epoch,
/// until}`; `{'stale', epoch}`; `{'lapsed', epoch}`; reap: `{'reaped',
/// 0 or 1}`.
pub(crate) const CHANGE: &str = r#"
local op = ARGV[1]
local agent = ARGV[2]
local node = ARGV[3]
local expected = tonumber(ARGV[4])
local lease = tonumber(ARGV[5])
local cap = ARGV[6]
local function fmt(x) return string.format('%.0f', x) end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'node', 'epoch', 'until')
local holder = h[1] or ''
local epoch = tonumber(h[2]) or 0
local expires = tonumber(h[3]) or 0

local function append(kind, who, at, till)
  local seq = redis.call('INCR', KEYS[3])
  if kind == 'expired' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', cap, '*',
      'seq', fmt(seq), 'agent', agent, 'node', who, 'epoch', fmt(epoch),
      'kind', kind, 'at', fmt(at), 'until', fmt(till), 'by', node)
  else
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', cap, '*',
      'seq', fmt(seq), 'agent', agent, 'node', who, 'epoch', fmt(epoch),
      'kind', kind, 'at', fmt(at), 'until', fmt(till))
  end
  return seq
end

-- A lease that ran out is recorded as expired (at the moment it ran out)
-- before anything else looks at the agent.
local lapsed = 0
if holder ~= '' and expires <= now then
  append('expired', holder, expires, expires)
  redis.call('HSET', KEYS[1], 'node', '')
  holder = ''
  lapsed = 1
end

if op == 'reap' then
  return {'reaped', lapsed}
end

if op == 'claim' then
  if holder ~= '' then
    return {'taken', holder, fmt(epoch), fmt(expires)}
  end
  if expected ~= epoch then
    return {'stale', fmt(epoch)}
  end
  epoch = epoch + 1
  local till = now + lease
  redis.call('HSET', KEYS[1], 'node', node, 'epoch', fmt(epoch), 'until', fmt(till))
  redis.call('SADD', KEYS[4], agent)
  local seq = append('claimed', node, now, till)
  return {'ok', fmt(epoch), fmt(till), fmt(now), fmt(seq)}
end

-- renew and release: only the holder of this very epoch.
if expected ~= epoch then
  return {'stale', fmt(epoch)}
end
if holder == '' then
  return {'lapsed', fmt(epoch)}
end
if holder ~= node then
  return {'taken', holder, fmt(epoch), fmt(expires)}
end
if op == 'renew' then
  local till = now + lease
  redis.call('HSET', KEYS[1], 'until', fmt(till))
  local seq = append('renewed', node, now, till)
  return {'ok', fmt(epoch), fmt(till), fmt(now), fmt(seq)}
end
if op == 'release' then
  redis.call('HSET', KEYS[1], 'node', '', 'until', fmt(now))
  local seq = append('released', node, now, now)
  return {'ok', fmt(epoch), fmt(now), fmt(now), fmt(seq)}
end
return redis.error_reply('frontdesk claims: unknown op')
"#;

/// A consistent picture of every agent and the stream position it matches
/// (read only; atomic like any script).
///
/// KEYS: 1 the set of agents, 2 the change stream, 3 the sequence counter.
/// ARGV: 1 the prefix of the agents' hash keys (`<prefix>agent:`).
///
/// Reply: `{seq, last stream id, now, {agent, node, epoch, until}, ...}`.
/// The agents' keys are built inside the script; a single Redis (not
/// Redis Cluster) allows that.
pub(crate) const SNAPSHOT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seq = redis.call('GET', KEYS[3]) or '0'
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local id = '0-0'
if last[1] then id = last[1][1] end
local reply = {seq, id, string.format('%.0f', now)}
for _, agent in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local h = redis.call('HMGET', ARGV[1] .. agent, 'node', 'epoch', 'until')
  table.insert(reply, {agent, h[1] or '', h[2] or '0', h[3] or '0'})
end
return reply
"#;
