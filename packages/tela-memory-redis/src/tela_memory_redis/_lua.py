"""Lua scripts of the Redis message store: every thread operation is one atomic round trip.

Threads live in their user's namespace. Layout of one thread (all keys share one hash tag,
base ``B = <prefix>:t:{<user>:<tid>}:`` with both ids %-escaped, so the pair is injective and
the user is part of every key):

- ``B meta``  hash: id, user, ukey (the user's index key), title, tags, md, default, count,
  created, updated, nseg (segments made), seq (messages appended), ttl
- ``B br``    hash: branch name -> ``seg|created_us|forked_from``
- ``B segs``  hash: segment number -> ``parent_seg|at`` (the segment continues the first ``at``
  entries of ``parent_seg``; 0 = a root segment)
- ``B s:<n>`` list: the message ids of segment ``n`` in append order; ``""`` marks a deleted one
- ``B m``     hash: message id -> message JSON (without thread_id / user_id / parent_id: those
  follow from the thread and the segment chain)
- ``B pos``   hash: message id -> ``seg|index|seq`` (seq: append order in the thread)
- ``B ts``    sorted set: message id scored by created_at (microseconds)
- ``B calls`` hash: tool call id -> id of the assistant message that made it

A branch owns one segment; forking creates an empty segment linked to the fork point, so a
branch reads by walking a few lists and nothing is copied. Global keys (``<prefix>:g:{<prefix>}:``)
map message ids to their thread's base (``ids``), index threads by activity (``activity``,
members ``<user>:<tid>`` escaped as in the hash tag) and by user (``u:<user>``, members the
user's own thread ids). On a standalone server the append script writes both in one call; on a
cluster the global part runs as its own script (another slot). ``schema`` holds the layout
version; ``threads`` is the activity index of the layout before namespacing (version 1), which
only the migration reads.

The change feed is a stream among the globals (``changes``). A write script gets the stream
to ``XADD`` its events to as ``KEYS[2]``: the feed itself on a standalone server, its slot's
outbox on a cluster (relayed into the feed by ``RELAY``); none when it records nothing.
"""

from __future__ import annotations

PRELUDE = r"""
local B = ARGV[1]
local META = B .. 'meta'
-- the change feed: the global stream (standalone) or this slot's outbox (cluster); absent
-- when the operation records no event (a thread deleted by erase_user)
local OUT = KEYS[2]
local function emit(k, u, t, mid)
  if OUT then redis.call('XADD', OUT, '*', 'k', k, 'u', u, 't', t, 'm', mid) end
end
local function err(kind, msg) return redis.error_reply('TELA ' .. kind .. ' ' .. msg) end
local function seg_key(n) return B .. 's:' .. n end
local function link(n)
  local v = redis.call('HGET', B .. 'segs', n)
  if not v then return 0, 0 end
  local p, a = string.match(v, '^(%d+)|(%d+)$')
  return tonumber(p), tonumber(a)
end
local function branch(name)
  local v = redis.call('HGET', B .. 'br', name)
  if not v then return nil end
  local s, c, f = string.match(v, '^(%d+)|(%d+)|(.*)$')
  return tonumber(s), c, f
end
local function chain(seg)
  local out = {}
  local hi = redis.call('LLEN', seg_key(seg))
  while seg and seg ~= 0 do
    out[#out + 1] = {seg, hi}
    local p, a = link(seg)
    seg, hi = p, a
  end
  return out
end
local function position(id)
  local v = redis.call('HGET', B .. 'pos', id)
  if not v then return nil end
  local s, i = string.match(v, '^(%d+)|(%d+)')
  return tonumber(s), tonumber(i)
end
local function on_chain(ch, id)
  local s, i = position(id)
  if not s then return nil end
  for k, c in ipairs(ch) do
    if c[1] == s and i < c[2] then return k, i end
  end
  return nil
end
-- newest-first ids of a chain, at most `limit` (-1: all), stopping at a deleted entry or at the
-- first message older than `since`; also returns the parent id of the oldest one returned
local function walk(ch, limit, since)
  local ids = {}
  for _, c in ipairs(ch) do
    local top = c[2] - 1
    while top >= 0 do
      local want = top + 1
      if limit >= 0 then want = limit - #ids + 1 end
      local lo = top - want + 1
      if lo < 0 then lo = 0 end
      local chunk = redis.call('LRANGE', seg_key(c[1]), lo, top)
      for j = #chunk, 1, -1 do
        local id = chunk[j]
        if id == '' then return ids, false end
        if limit >= 0 and #ids >= limit then return ids, id end
        if since then
          local s = redis.call('ZSCORE', B .. 'ts', id)
          if s and tonumber(s) < since then return ids, id end
        end
        ids[#ids + 1] = id
      end
      top = lo - 1
    end
  end
  return ids, false
end
local function head_of(seg)
  local ids = walk(chain(seg), 1, nil)
  return ids[1] or ''
end
-- Lua's unpack is limited to a few thousand values: big argument lists go in chunks
local CH = 2000
local function bulk(cmd, key, items)
  local r = 0
  for i = 1, #items, CH do
    r = redis.call(cmd, key, unpack(items, i, math.min(i + CH - 1, #items)))
  end
  return r
end
local function hmget(key, ids)
  local out = {}
  for i = 1, #ids, CH do
    local r = redis.call('HMGET', key, unpack(ids, i, math.min(i + CH - 1, #ids)))
    for j = 1, #r do out[#out + 1] = r[j] end
  end
  return out
end
local function extend(t, items)
  for i = 1, #items do t[#t + 1] = items[i] end
  return t
end
local function del_all(keys)
  for i = 1, #keys, CH do redis.call('DEL', unpack(keys, i, math.min(i + CH - 1, #keys))) end
end
local function thread_keys()
  local keys = {META, B .. 'br', B .. 'segs', B .. 'm', B .. 'pos', B .. 'ts', B .. 'calls'}
  for _, n in ipairs(redis.call('HKEYS', B .. 'segs')) do keys[#keys + 1] = seg_key(n) end
  return keys
end
local function touch_ttl(default_ttl, own)
  if own == nil then own = redis.call('HGET', META, 'ttl') end
  local ttl = tonumber(own or default_ttl) or 0
  if ttl > 0 then
    for _, k in ipairs(thread_keys()) do redis.call('PEXPIRE', k, ttl) end
  end
end
"""

# KEYS: meta, feed [, ids, activity]   (the global keys only on a standalone server)
# ARGV: B, now, branch, user, ukey, default_ttl, n, (id, json, created) * n,
#       nc, needed_call_ids * nc, np, (call_id, msg_id) * np, tid, activity member
# The thread is the user's by construction (the user is part of B): nothing to check.
APPEND = (
    PRELUDE
    + r"""
local now, bname, user, ukey, dttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local n = tonumber(ARGV[7])
local p = 8
local msgs = {}
for i = 1, n do msgs[i] = {ARGV[p], ARGV[p + 1], ARGV[p + 2]}; p = p + 3 end
local needed = {}
local nc = tonumber(ARGV[p]); p = p + 1
for i = 1, nc do needed[i] = ARGV[p]; p = p + 1 end
local produced = {}
local np = tonumber(ARGV[p]); p = p + 1
for i = 1, np do produced[i] = {ARGV[p], ARGV[p + 1]}; p = p + 2 end
local tid, member = ARGV[p], ARGV[p + 1]

local m = redis.call('HMGET', META, 'default', 'ttl', 'seq', 'count')
local exists = m[1] ~= false
if bname == '' then
  if exists then bname = m[1] else bname = 'main' end
end
local seg = 1
if exists then
  seg = branch(bname)
  if not seg then return err('NOTFOUND', 'no branch ' .. bname) end
end
for _, msg in ipairs(msgs) do
  -- on a standalone server the global id map answers for every thread at once
  local holder = B
  if #KEYS > 2 then holder = redis.call('HGET', KEYS[3], msg[1]) end
  if holder and redis.call('HEXISTS', holder .. 'm', msg[1]) == 1 then
    return err('CONFLICT', 'message id ' .. msg[1] .. ' is already stored')
  end
end
local ch = {}
if exists and #needed > 0 then ch = chain(seg) end
if #needed > 0 then
  local missing = {}
  for _, cid in ipairs(needed) do
    local mid = redis.call('HGET', B .. 'calls', cid)
    if not mid or not on_chain(ch, mid) then missing[#missing + 1] = cid end
  end
  if #missing > 0 then return {'TOOLS', missing} end
end
local parent = ''
if exists then
  local last = redis.call('LINDEX', seg_key(seg), -1)
  if last then
    parent = last
  else  -- an empty segment (a fresh fork): the head is in the parent segment
    if #ch == 0 then ch = chain(seg) end
    parent = walk(ch, 1, nil)[1] or ''
  end
end
-- all checks passed: write
if not exists then
  redis.call('HSET', META, 'id', tid, 'user', user, 'ukey', ukey, 'default', bname,
    'count', 0, 'created', now, 'updated', now, 'nseg', 1, 'title', '', 'tags', '[]', 'md', '{}')
  redis.call('HSET', B .. 'segs', 1, '0|0')
  redis.call('HSET', B .. 'br', bname, '1|' .. now .. '|')
end
local ids, mh, ph, zs = {}, {}, {}, {}
for i, msg in ipairs(msgs) do
  ids[i] = msg[1]
  mh[#mh + 1] = msg[1]; mh[#mh + 1] = msg[2]
  zs[#zs + 1] = msg[3]; zs[#zs + 1] = msg[1]
end
local len = bulk('RPUSH', seg_key(seg), ids)
local seq = tonumber(m[3]) or 0
for i, id in ipairs(ids) do
  ph[#ph + 1] = id; ph[#ph + 1] = seg .. '|' .. (len - n + i - 1) .. '|' .. (seq + i)
end
bulk('HSET', B .. 'm', mh)
bulk('HSET', B .. 'pos', ph)
bulk('ZADD', B .. 'ts', zs)
for _, pc in ipairs(produced) do redis.call('HSET', B .. 'calls', pc[1], pc[2]) end
redis.call('HSET', META, 'seq', seq + n, 'count', (tonumber(m[4]) or 0) + n, 'updated', now)
touch_ttl(dttl, m[2])
for _, id in ipairs(ids) do emit('append', user, tid, id) end
if #KEYS > 2 then
  local ih = {}
  for _, id in ipairs(ids) do ih[#ih + 1] = id; ih[#ih + 1] = B end
  bulk('HSET', KEYS[3], ih)
  redis.call('ZADD', KEYS[4], now, member)
  redis.call('ZADD', ukey, now, tid)
end
return {'OK', parent}
"""
)

# global part of an append on a cluster, run before the thread script so that no thread can
# exist unindexed. KEYS: ids, activity, the user's index. ARGV: B, member, tid, now, ids...
# Returns {'OK', added to the user index (0/1), newly claimed ids...} or {'TAKEN', id, B...}
CLAIM = r"""
local B, member, tid, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local taken, fresh = {'TAKEN'}, {'OK'}
for i = 5, #ARGV do
  local other = redis.call('HGET', KEYS[1], ARGV[i])
  if other and other ~= B then taken[#taken + 1] = ARGV[i]; taken[#taken + 1] = other end
  if not other then fresh[#fresh + 1] = ARGV[i] end
end
if #taken > 1 then return taken end
for i = 2, #fresh do redis.call('HSET', KEYS[1], fresh[i], B) end
redis.call('ZADD', KEYS[2], now, member)
local added = redis.call('ZADD', KEYS[3], 'NX', now, tid)
table.insert(fresh, 2, added)
return fresh
"""

# give back ids claimed by an append that failed. KEYS: ids. ARGV: B, ids...
UNCLAIM = r"""
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 0
"""

# KEYS: meta. ARGV: B, branch, limit, since ('' = none), before ('' = none), refresh_ttl,
# with_ids ('' = no). Returns {'OK', parent id of the oldest, json...} oldest first, or
# with ids {'OK', parent, id, json, id, json...} (each message's parent is the one before)
READ = (
    PRELUDE
    + r"""
local default = redis.call('HGET', META, 'default')
if not default then return {'NOTHREAD'} end
local bname = ARGV[2]
if bname == '' then bname = default end
local seg = branch(bname)
if not seg then return err('NOTFOUND', 'no branch ' .. bname) end
local ch = chain(seg)
if ARGV[5] ~= '' then
  local k, i = on_chain(ch, ARGV[5])
  if not k then return err('NOTFOUND', 'message ' .. ARGV[5] .. ' is not on branch ' .. bname) end
  local cut = {{ch[k][1], i}}
  for j = k + 1, #ch do cut[#cut + 1] = ch[j] end
  ch = cut
end
local since = nil
if ARGV[4] ~= '' then since = tonumber(ARGV[4]) end
local ids, parent = walk(ch, tonumber(ARGV[3]), since)
local out = {'OK', parent or ''}
if #ids > 0 then
  local js = hmget(B .. 'm', ids)
  if ARGV[7] ~= '' then
    for j = #ids, 1, -1 do out[#out + 1] = ids[j]; out[#out + 1] = js[j] or false end
  else
    for j = #ids, 1, -1 do out[#out + 1] = js[j] or false end
  end
end
if ARGV[6] ~= '' then touch_ttl(ARGV[6]) end
return out
"""
)

# KEYS: meta. ARGV: B, message id
GET = (
    PRELUDE
    + r"""
local id = ARGV[2]
local js = redis.call('HGET', B .. 'm', id)
if not js then return {'MISSING'} end
local s, i = position(id)
local parent = ''
if s then
  local seg, idx = s, i
  while seg ~= 0 do
    if idx > 0 then
      parent = redis.call('LINDEX', seg_key(seg), idx - 1) or ''
      break
    end
    local p, a = link(seg)
    seg, idx = p, a
  end
end
local m = redis.call('HMGET', META, 'id', 'user')
return {'OK', m[1] or '', m[2] or '', parent, js}
"""
)

# KEYS: meta, feed. ARGV: B, message id, new json, user, tid
UPDATE_MESSAGE = (
    PRELUDE
    + r"""
if redis.call('HEXISTS', B .. 'm', ARGV[2]) == 0 then return {'MISSING'} end
redis.call('HSET', B .. 'm', ARGV[2], ARGV[3])
emit('update', ARGV[4], ARGV[5], ARGV[2])
return {'OK'}
"""
)

# KEYS: meta. ARGV: B, at message id, name ('' = auto), now
FORK = (
    PRELUDE
    + r"""
if redis.call('EXISTS', META) == 0 then return err('NOTFOUND', 'no thread') end
local s, i = position(ARGV[2])
if not s or redis.call('HEXISTS', B .. 'm', ARGV[2]) == 0 then
  return err('NOTFOUND', 'thread has no message ' .. ARGV[2])
end
local name = ARGV[3]
if name == '' then name = 'branch-' .. redis.call('HLEN', B .. 'br') end
if redis.call('HEXISTS', B .. 'br', name) == 1 then
  return err('CONFLICT', 'thread already has a branch ' .. name)
end
local n = redis.call('HINCRBY', META, 'nseg', 1)
redis.call('HSET', B .. 'segs', n, s .. '|' .. (i + 1))
redis.call('HSET', B .. 'br', name, n .. '|' .. ARGV[4] .. '|' .. ARGV[2])
touch_ttl(ARGV[5])
return {'OK', name}
"""
)

# KEYS: meta. ARGV: B. Returns default, then (name, created, forked_from, head) per branch
BRANCHES = (
    PRELUDE
    + r"""
if redis.call('EXISTS', META) == 0 then return {} end
local out = {redis.call('HGET', META, 'default') or ''}
local all = redis.call('HGETALL', B .. 'br')
for j = 1, #all, 2 do
  local s, c, f = string.match(all[j + 1], '^(%d+)|(%d+)|(.*)$')
  out[#out + 1] = all[j]; out[#out + 1] = c; out[#out + 1] = f
  out[#out + 1] = head_of(tonumber(s))
end
return out
"""
)

# KEYS: meta. ARGV: B, name
SET_DEFAULT = (
    PRELUDE
    + r"""
if redis.call('EXISTS', META) == 0 then return err('NOTFOUND', 'no thread') end
if redis.call('HEXISTS', B .. 'br', ARGV[2]) == 0 then
  return err('NOTFOUND', 'no branch ' .. ARGV[2])
end
redis.call('HSET', META, 'default', ARGV[2])
return {'OK'}
"""
)

# drop the given segments' entries beyond what the remaining branches reach; returns the
# deleted message ids
PRUNE = r"""
local function prune()
  local need = {}
  for _, v in ipairs(redis.call('HVALS', B .. 'br')) do
    local s = tonumber(string.match(v, '^(%d+)|'))
    for _, c in ipairs(chain(s)) do
      if (need[c[1]] or -1) < c[2] then need[c[1]] = c[2] end
    end
  end
  local gone = {}
  for _, n in ipairs(redis.call('HKEYS', B .. 'segs')) do
    local seg = tonumber(n)
    local keep = need[seg] or 0
    local ids = redis.call('LRANGE', seg_key(seg), keep, -1)
    for _, id in ipairs(ids) do if id ~= '' then gone[#gone + 1] = id end end
    if need[seg] == nil then
      redis.call('DEL', seg_key(seg))
      redis.call('HDEL', B .. 'segs', seg)
    elseif #ids > 0 then
      redis.call('LTRIM', seg_key(seg), 0, keep - 1)
    end
  end
  if #gone > 0 then
    bulk('HDEL', B .. 'm', gone)
    bulk('HDEL', B .. 'pos', gone)
    bulk('ZREM', B .. 'ts', gone)
    redis.call('HINCRBY', META, 'count', -#gone)
    local who = redis.call('HMGET', META, 'user', 'id')
    for _, id in ipairs(gone) do emit('delete', who[1] or '', who[2] or '', id) end
  end
  return gone
end
"""

# KEYS: meta, feed. ARGV: B, name. Returns {'OK', deleted ids...}
DELETE_BRANCH = (
    PRELUDE
    + PRUNE
    + r"""
if redis.call('EXISTS', META) == 0 then return err('NOTFOUND', 'no thread') end
if redis.call('HEXISTS', B .. 'br', ARGV[2]) == 0 then
  return err('NOTFOUND', 'no branch ' .. ARGV[2])
end
if redis.call('HGET', META, 'default') == ARGV[2] then
  return err('CONFLICT', ARGV[2] .. ' is the default branch; switch the default first')
end
redis.call('HDEL', B .. 'br', ARGV[2])
local gone = prune()
return extend({'OK'}, gone)
"""
)

# KEYS: meta [, feed]. ARGV: B. Returns {'OK', id, ukey, branch count, message ids...} and
# deletes
DELETE_THREAD = (
    PRELUDE
    + r"""
if redis.call('EXISTS', META) == 0 then return {'MISSING'} end
local m = redis.call('HMGET', META, 'id', 'ukey', 'user')
local nb = redis.call('HLEN', B .. 'br')
local ids = redis.call('HKEYS', B .. 'm')
del_all(thread_keys())
emit('thread_deleted', m[3] or '', m[1] or '', '')
return extend({'OK', m[1] or '', m[2] or '', nb}, ids)
"""
)

# KEYS: meta, feed. ARGV: B, cutoff ('' = none), max_messages ('' = none)
# Returns {'OK', thread_gone (0/1), branches_gone, ukey, tid, deleted ids...}
RETENTION = (
    PRELUDE
    + r"""
if redis.call('EXISTS', META) == 0 then return {'MISSING'} end
local doomed, seen = {}, {}
if ARGV[2] ~= '' then
  for _, id in ipairs(redis.call('ZRANGE', B .. 'ts', '-inf', '(' .. ARGV[2], 'BYSCORE')) do
    doomed[#doomed + 1] = id; seen[id] = true
  end
end
if ARGV[3] ~= '' then
  local keep = tonumber(ARGV[3])
  local live = {}
  local all = redis.call('HGETALL', B .. 'pos')
  for j = 1, #all, 2 do
    if not seen[all[j]] then
      live[#live + 1] = {all[j], tonumber(string.match(all[j + 1], '^%d+|%d+|(%d+)$') or '0')}
    end
  end
  table.sort(live, function(a, b) return a[2] < b[2] end)
  for j = 1, #live - keep do doomed[#doomed + 1] = live[j][1]; seen[live[j][1]] = true end
end
local tid = redis.call('HGET', META, 'id') or ''
local ukey = redis.call('HGET', META, 'ukey') or ''
if #doomed == 0 then return {'OK', 0, 0, ukey, tid} end
-- heads before deleting
local default = redis.call('HGET', META, 'default')
local heads = {}
local all = redis.call('HGETALL', B .. 'br')
for j = 1, #all, 2 do
  heads[all[j]] = head_of(tonumber(string.match(all[j + 1], '^(%d+)|')))
end
for _, id in ipairs(doomed) do
  local s, i = position(id)
  if s then redis.call('LSET', seg_key(s), i, '') end
end
bulk('HDEL', B .. 'm', doomed)
bulk('HDEL', B .. 'pos', doomed)
bulk('ZREM', B .. 'ts', doomed)
local owner = redis.call('HGET', META, 'user') or ''
for _, id in ipairs(doomed) do emit('delete', owner, tid, id) end
local left = redis.call('HINCRBY', META, 'count', -#doomed)
local bgone = 0
for name, h in pairs(heads) do
  if h ~= '' and seen[h] and name ~= default then
    redis.call('HDEL', B .. 'br', name); bgone = bgone + 1
  end
end
if left <= 0 then
  bgone = bgone + redis.call('HLEN', B .. 'br')
  del_all(thread_keys())
  emit('thread_deleted', owner, tid, '')
  return extend({'OK', 1, bgone, ukey, tid}, doomed)
end
return extend({'OK', 0, bgone, ukey, tid}, doomed)
"""
)

# KEYS: meta. ARGV: B, now, fields to set (t = title, g = tags, m = metadata), title, tags, md
UPDATE_THREAD = (
    PRELUDE
    + r"""
if redis.call('EXISTS', META) == 0 then return {'MISSING'} end
local f = {'updated', ARGV[2]}
if string.find(ARGV[3], 't', 1, true) then f[#f + 1] = 'title'; f[#f + 1] = ARGV[4] end
if string.find(ARGV[3], 'g', 1, true) then f[#f + 1] = 'tags'; f[#f + 1] = ARGV[5] end
if string.find(ARGV[3], 'm', 1, true) then f[#f + 1] = 'md'; f[#f + 1] = ARGV[6] end
redis.call('HSET', META, unpack(f))
return redis.call('HGETALL', META)
"""
)

# KEYS: meta. ARGV: B, ttl ms ('' or '0' = clear)
SET_TTL = (
    PRELUDE
    + r"""
if redis.call('EXISTS', META) == 0 then return err('NOTFOUND', 'no thread') end
local ttl = tonumber(ARGV[2]) or 0
if ttl > 0 then
  redis.call('HSET', META, 'ttl', ttl)
  touch_ttl(ttl)
else
  redis.call('HDEL', META, 'ttl')
  for _, k in ipairs(thread_keys()) do redis.call('PERSIST', k) end
end
return {'OK'}
"""
)

# -- migration from the layout before namespacing (schema 1) ---------------------------------
# One legacy thread moves in five idempotent steps, each safe to interrupt: DUMP its keys (old
# slot), RESTORE them under the user's base (new slot), point the global maps at it (global
# slot), delete the old keys, drop it from the legacy activity index. Keys move across slots,
# so the copy is DUMP / RESTORE, never RENAME.

# KEYS: old meta. ARGV: old B. Returns {} (gone) or {user, (suffix, dump, pttl) per key}
MIGRATE_DUMP = (
    PRELUDE
    + r"""
if redis.call('EXISTS', META) == 0 then return {} end
local out = {redis.call('HGET', META, 'user') or ''}
for _, k in ipairs(thread_keys()) do
  local d = redis.call('DUMP', k)
  if d then
    out[#out + 1] = string.sub(k, #B + 1); out[#out + 1] = d
    out[#out + 1] = redis.call('PTTL', k)
  end
end
return out
"""
)

# KEYS: new meta. ARGV: new B, user, ukey, (suffix, dump, pttl) * n. Replaces what an
# interrupted earlier run may have restored; the thread's remaining TTL is kept.
MIGRATE_RESTORE = r"""
local B = ARGV[1]
for i = 4, #ARGV, 3 do
  local ttl = tonumber(ARGV[i + 2])
  if ttl < 0 then ttl = 0 end
  redis.call('RESTORE', B .. ARGV[i], ttl, ARGV[i + 1], 'REPLACE')
end
redis.call('HSET', B .. 'meta', 'user', ARGV[2], 'ukey', ARGV[3])
return 1
"""

# KEYS: ids, activity, the user's index. ARGV: new B, activity member, tid, score, message ids...
MIGRATE_INDEX = r"""
for i = 5, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[3], 'NX', ARGV[4], ARGV[3])
return 1
"""

# KEYS: old meta. ARGV: old B
MIGRATE_DROP = (
    PRELUDE
    + r"""
del_all(thread_keys())
return 1
"""
)

# KEYS: lock. ARGV: token, ms. Extend the lock if it is still ours.
LOCK_REFRESH = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: lock. ARGV: token. Release the lock if it is still ours.
LOCK_RELEASE = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# -- the change feed ---------------------------------------------------------------------------
# One stream under the globals (``<G>changes``), entries ``k`` (kind) ``u`` (user) ``t`` (thread)
# ``m`` (message, '' for none) [``a``: when it happened, ms, if it was relayed from an outbox];
# ``changes:epoch`` names this feed (cursors carry it), ``changes:floor`` the newest entry id
# trimmed away. On a cluster each write XADDs to its slot's outbox (a stream in the thread's
# slot) in the write's own script; RELAY copies an outbox into the feed exactly once (a
# per-slot watermark, ``changes:relayed``), ``changes:pending`` counts the writes per slot that
# have not relayed yet (a writer that died leaves it above 0 and readers relay for it).

IDLT = r"""
local function idlt(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
"""

# KEYS: feed, epoch, floor. ARGV: cursor epoch, cursor id. Drops the entries up to the cursor.
# Returns {'GAP'} or {'OK', entries dropped}
TRIM = (
    IDLT
    + r"""
local ep = redis.call('GET', KEYS[2])
if not ep or ep ~= ARGV[1] then return {'GAP'} end
local floor = redis.call('GET', KEYS[3])
if floor and idlt(ARGV[2], floor) then return {'GAP'} end
local ms, sq = string.match(ARGV[2], '^(%d+)-(%d+)$')
local n = redis.call('XTRIM', KEYS[1], 'MINID', ms .. '-' .. (tonumber(sq) + 1))
redis.call('SET', KEYS[3], ARGV[2])
return {'OK', n}
"""
)

# KEYS: feed, relayed watermarks, pending counts. ARGV: slot, release (1: this writer is done),
# (outbox id, kind, user, thread, message) * n oldest first. Returns the slot's watermark.
RELAY = (
    IDLT
    + r"""
local mark = redis.call('HGET', KEYS[2], ARGV[1]) or '0-0'
local last = mark
for i = 3, #ARGV, 5 do
  if idlt(last, ARGV[i]) then
    redis.call('XADD', KEYS[1], '*', 'k', ARGV[i + 1], 'u', ARGV[i + 2], 't', ARGV[i + 3],
      'm', ARGV[i + 4], 'a', string.match(ARGV[i], '^(%d+)'))
    last = ARGV[i]
  end
end
if last ~= mark then redis.call('HSET', KEYS[2], ARGV[1], last) end
if ARGV[2] == '1' then
  if redis.call('HINCRBY', KEYS[3], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[3], ARGV[1]) end
end
return last
"""
)

# KEYS: feed. ARGV: user, start ('-' or '(id'), count. Deletes the user's entries among the
# next `count`; returns the id to continue after ('' at the end)
PURGE = r"""
local rows = redis.call('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', ARGV[3])
local doomed = {}
for _, r in ipairs(rows) do
  local f = r[2]
  for j = 1, #f, 2 do
    if f[j] == 'u' then
      if f[j + 1] == ARGV[1] then doomed[#doomed + 1] = r[1] end
      break
    end
  end
end
for i = 1, #doomed, 1000 do
  redis.call('XDEL', KEYS[1], unpack(doomed, i, math.min(i + 999, #doomed)))
end
if #rows < tonumber(ARGV[3]) then return '' end
return rows[#rows][1]
"""

SCRIPTS = {
    "append": APPEND,
    "claim": CLAIM,
    "read": READ,
    "get": GET,
    "update_message": UPDATE_MESSAGE,
    "fork": FORK,
    "branches": BRANCHES,
    "set_default": SET_DEFAULT,
    "delete_branch": DELETE_BRANCH,
    "delete_thread": DELETE_THREAD,
    "retention": RETENTION,
    "update_thread": UPDATE_THREAD,
    "set_ttl": SET_TTL,
}
