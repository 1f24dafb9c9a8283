//! The Lua scripts Redis runs for claims. Redis executes a script
//! atomically, so each change is one compare-and-set plus its stream entry
//! in one round trip.
//!
//! Numbers go back into Redis through `fmt` (`%.0f`): Lua 5.1's numbers
//! are doubles, exact for integers below 2^53 (milliseconds since 1970
//! and counters are far below), and `%.0f` never writes an exponent.

/// The Lua function both the claim and the line's sync use: whether node
/// `n`'s heartbeat (the JSON `frontdesk::app::cluster` writes in the
/// nodes' hash, `last_seen` in Unix ms) is at most `within` ms old by
/// Redis's `now` (nodes' clocks are assumed NTP-close, as for presence).
/// A heartbeat we cannot read counts as dead.
macro_rules! alive_function {
    () => {
        r#"
local function alive(nodes, n, within)
  local beat = redis.call('HGET', nodes, n)
  if not beat then return false end
  local ok, decoded = pcall(cjson.decode, beat)
  if not ok or type(decoded) ~= 'table' then return false end
  local seen = tonumber(decoded['last_seen'])
  return seen ~= nil and now - seen <= within
end
"#
    };
}

/// One change of one agent's claim.
///
/// KEYS: 1 the agent's hash, 2 the change stream, 3 the sequence counter,
/// 4 the set of agents ever claimed; for a claim in line
/// ([`crate::line`]) also 5 the nodes' heartbeats and 6.. the shared lines
/// of the queues the agent serves, the caller's own queue first.
/// ARGV: 1 op (`claim`, `renew`, `release`, `reap`), 2 agent id, 3 node
/// (the claimer, the holder renewing or releasing, the reaper), 4 epoch (claim: the epoch the caller last saw; renew and release: the
/// epoch held), 5 lease in milliseconds, 6 the stream's `MAXLEN ~` bound;
/// for a claim in line 7 the caller's member (`<node>/<call>`), 8 its
/// score, 9 how recent a heartbeat keeps a node alive (ms), 10 `1` to
/// skip the check (the node yielded once already).
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
/// until}`; `{'stale', epoch}`; `{'lapsed', epoch}`; `{'behind', member,
/// epoch}` (a caller of another live node is ahead in a line the agent
/// serves); reap: `{'reaped', 0 or 1}`.
///
/// The line check, for a claim that names a member: every member scored
/// below it in the given lines (at most 64 per line, in order) is looked
/// at; one of another node whose heartbeat is fresh refuses the claim, one
/// of a node whose heartbeat lapsed (or a member we cannot read) is
/// removed on the spot. The claimer's own members are skipped: its router
/// already serves its callers in order, and passes over one only for a
/// reason of its own (a coordinator's window, a transfer's agent). On
/// success the caller's member leaves its line (the first line key) in
/// the same script: it is being offered.
pub(crate) const CHANGE: &str = concat!(
    r#"
local op = ARGV[1]
local agent = ARGV[2]
local node = ARGV[3]
local expected = tonumber(ARGV[4])
local lease = tonumber(ARGV[5])
local cap = ARGV[6]
local function fmt(x) return string.format('%.0f', x) end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"#,
    alive_function!(),
    r#"
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
  local member = ARGV[7] or ''
  if member ~= '' then
    if ARGV[10] ~= '1' then
      local within = tonumber(ARGV[9]) or 0
      for i = 6, #KEYS do
        local ahead = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', '(' .. ARGV[8], 'LIMIT', 0, 64)
        for _, m in ipairs(ahead) do
          local n = string.match(m, '^(.+)/%d+$')
          if n ~= node then
            if n and alive(KEYS[5], n, within) then
              return {'behind', m, fmt(epoch)}
            end
            redis.call('ZREM', KEYS[i], m)
          end
        end
      end
    end
    if KEYS[6] then
      redis.call('ZREM', KEYS[6], member)
    end
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
"#
);

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

/// Makes a node's members of the shared lines what it says, and drops the
/// members of dead nodes ([`crate::line::LineStore::sync`]).
///
/// KEYS: 1 the nodes' heartbeats, 2.. the lines.
/// ARGV: 1 this node, 2 how recent a heartbeat keeps a node alive (ms),
/// then triples: the line's index in KEYS, the member, its score.
///
/// Reply: how many members were removed.
pub(crate) const SYNC: &str = concat!(
    r#"
local node = ARGV[1]
local within = tonumber(ARGV[2]) or 0
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"#,
    alive_function!(),
    r#"
local wanted = {}
for j = 3, #ARGV - 2, 3 do
  local k = tonumber(ARGV[j])
  if k and k >= 2 and k <= #KEYS then
    wanted[k .. ' ' .. ARGV[j + 1]] = true
    redis.call('ZADD', KEYS[k], ARGV[j + 2], ARGV[j + 1])
  end
end
local living = {}
local removed = 0
for i = 2, #KEYS do
  for _, m in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
    local n = string.match(m, '^(.+)/%d+$')
    local keep
    if n == node then
      keep = wanted[i .. ' ' .. m] == true
    elseif n then
      if living[n] == nil then living[n] = alive(KEYS[1], n, within) end
      keep = living[n]
    else
      keep = false
    end
    if not keep then
      redis.call('ZREM', KEYS[i], m)
      removed = removed + 1
    end
  end
end
return removed
"#
);
