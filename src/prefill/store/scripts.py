"""The Lua scripts: each one a step that must happen atomically, with the reason beside it."""

from __future__ import annotations

from typing import Any, NamedTuple

import redis.exceptions
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.typing import EncodableT

BUMP_GENERATION_SCRIPT = """
if redis.call('HEXISTS', KEYS[1], 'e') == 1 then
  return redis.call('HINCRBY', KEYS[1], 'g', 1)
end
return false
"""


RECORD_AUDIT_SCRIPT = """
-- KEYS: the shared stream, and optionally the customer's index of it
-- ARGV: entry JSON, oldest id kept, index TTL (seconds)
local id = redis.call('XADD', KEYS[1], 'MINID', ARGV[2], '*', 'e', ARGV[1])
if KEYS[2] then
  redis.call('XADD', KEYS[2], 'MINID', ARGV[2], id, 'e', ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return id
"""
"""One entry in the shared audit stream and the same id in the customer's index: an erasure
can then delete exactly that customer's entries from the shared stream."""


RECORD_CONSENT_SCRIPT = """
-- KEYS: the customer's hash (records.py), its request outcomes
-- ARGV: the event (msgpack), its purpose's state field, action code, notice version, request
--       id ('' for none), fingerprint, TTL, updated_at
if ARGV[5] ~= '' then
  local stored = redis.call('HGET', KEYS[2], ARGV[5])
  if stored then
    -- Written again as it is: a write of this connection's, so a WAIT after it covers the
    -- first request's write too (replication keeps order), which may not have reached a
    -- replica when that request was refused for it.
    redis.call('HSET', KEYS[2], ARGV[5], stored)
    return {'replayed', stored, redis.call('HEXISTS', KEYS[2], ARGV[5] .. '#published')}
  end
end
if redis.call('HEXISTS', KEYS[1], 'e') == 0 then return {'unknown_customer', ''} end
local outcome, event = 'recorded', ARGV[1]
local index = redis.call('HGET', KEYS[1], ARGV[2])
if index then
  local current = redis.call('HGET', KEYS[1], 'h.' .. index)
  local state = cmsgpack.unpack(current)
  if state[2] == tonumber(ARGV[3]) and (state[5] or '') == ARGV[4] then
    outcome, event = 'unchanged', current
  end
end
if outcome == 'recorded' then
  local i = redis.call('HINCRBY', KEYS[1], 'n', 1) - 1
  redis.call('HSET', KEYS[1], 'h.' .. i, event, ARGV[2], i, 'u', ARGV[8])
  redis.call('HINCRBY', KEYS[1], 'v', 1)
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[5], ARGV[6] .. '|' .. outcome .. '|' .. event)
  redis.call('EXPIRE', KEYS[2], ARGV[7])
end
return {outcome, event}
"""
"""Check the request id, the customer and the current state, and append: one atomic step, so
two retries of one request cannot both record, and nothing is recorded for an erased customer.
The history entry and the state pointing at it are written together."""


COUNT_FUNNEL_SCRIPT = """
-- KEYS: a campaign's counters, its salt, then a HyperLogLog per stage a person is counted in
-- ARGV: retention (s), the campaign's link lifetime (s; 0 leaves the salt alone), the number N
--       of counters, N field/amount pairs, then with a lifetime: a new salt for when there is
--       none, and one keyed pseudonym per HyperLogLog (what changes from call to call, last)
local n = tonumber(ARGV[3])
for i = 0, n - 1 do
  redis.call('HINCRBY', KEYS[1], ARGV[4 + 2 * i], ARGV[5 + 2 * i])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
local lifetime = tonumber(ARGV[2])
if lifetime > 0 then
  local new_salt = 4 + 2 * n
  redis.call('SET', KEYS[2], ARGV[new_salt], 'NX')
  if redis.call('TTL', KEYS[2]) < lifetime then redis.call('EXPIRE', KEYS[2], lifetime) end
  local salt = redis.call('GET', KEYS[2])
  for k = 3, #KEYS do
    redis.call('PFADD', KEYS[k], redis.sha1hex(salt .. ARGV[new_salt + k - 2]))
    redis.call('EXPIRE', KEYS[k], ARGV[1])
  end
end
"""
"""A funnel update in one command (its keys share the campaign's hash tag). People go into the
HyperLogLogs salted: the salt outlives the campaign's links only as long as their lifetime, and
without it, nobody can tell whether a given person was counted, keys or not."""


READ_FUNNELS_SCRIPT = """
-- KEYS: per campaign, its counters in this bucket's shard, then its HyperLogLog per stage
-- ARGV: the number of stages
local stages = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS, stages + 1 do
  out[#out + 1] = redis.call('HGETALL', KEYS[i])
  for k = 1, stages do out[#out + 1] = redis.call('PFCOUNT', KEYS[i + k]) end
end
return out
"""
"""One bucket's shard of several campaigns' funnels, in one command (one slot)."""


RATE_COUNT_SCRIPT = """
-- KEYS: a rate counter, optionally the day's anonymous refusal counts. ARGV: the window in ms,
-- the limit, and with KEYS[2] the refusal's field and the counts' TTL. Counts one request; the
-- first one starts the window. The refusal is counted only within the limit: a limited
-- request writes nothing to the audit. Returns the count and the window's remaining ms.
-- The counter stays out of the append-only file and the replicas: a count that a restart or a
-- failover forgets costs nothing, while a write to the file would cost every link request an
-- fsync. (replicate_commands is needed on Redis 6 for set_repl, and a no-op from Redis 7 on.)
redis.replicate_commands()
redis.set_repl(redis.REPL_NONE)
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
if KEYS[2] and n <= tonumber(ARGV[2]) then
  redis.set_repl(redis.REPL_ALL)  -- The refusal count is audit: durable like the rest.
  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return {n, ttl}
"""
"""Rate limits (ratelimit.py): counting and starting the window in one step, so no instance
can leave a counter without its expiry."""


FIRST_SEEN_SCRIPT = """
-- KEYS: a run's seen hash. ARGV: TTL, then id, line pairs. Returns line, first line pairs of
-- the ids seen before. HSETNX both checks and records: one command a row, not two.
local repeated = {}
for i = 2, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 0 then
    repeated[#repeated + 1] = ARGV[i + 1]
    repeated[#repeated + 1] = redis.call('HGET', KEYS[1], ARGV[i])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return repeated
"""
"""A batch of a bulk run checks its ids in one command, not one per row."""


_WRITE_CUSTOMER_FUNCTION = """
-- A customer's hash (records.py) and the bucket's index of its customers, then from ARGV[a]:
-- the write version the decision read ('' for none), the customer's id if they are new ('' if
-- not), a msgpack array of the fields to remove and the field/value pairs to set (the record,
-- the states, the history count, updated_at, the raised write version), and the number of
-- history entries to append followed by their field/event pairs (events are binary, which
-- cmsgpack does not take). The caller works all of it out from the hash it read: one HSET,
-- not a command per field, and few arguments (each costs the client).
-- Writes only while the hash is still the one the decision was made on (every write raises
-- its version); returns 1 if it wrote, 0 if it changed meanwhile (the caller decides again),
-- and where the next customer's arguments start.
local function write_customer(hash, index, ARGV, a)
  local after = a + 4 + 2 * tonumber(ARGV[a + 3])
  if (redis.call('HGET', hash, 'v') or '') ~= ARGV[a] then return 0, after end
  local write = cmsgpack.unpack(ARGV[a + 2])
  if #write[1] > 0 then redis.call('HDEL', hash, unpack(write[1])) end
  local set = write[2]
  for j = a + 4, after - 1 do set[#set + 1] = ARGV[j] end
  redis.call('HSET', hash, unpack(set))
  if ARGV[a + 1] ~= '' then redis.call('SADD', index, ARGV[a + 1]) end
  return 1, after
end
"""

WRITE_CUSTOMER_SCRIPT = (
    _WRITE_CUSTOMER_FUNCTION
    + """
-- KEYS: the customer's hash, the bucket's index. ARGV: as write_customer's above.
return (write_customer(KEYS[1], KEYS[2], ARGV, 1))
"""
)
"""A bulk write per customer, compare-and-set on the hash's write version: one customer is
one key, where a WATCH over a whole batch would span every slot. An erasure or a withdrawal that
lands while a batch is being decided makes that customer's write refuse, so it can never be
written over."""


WRITE_CUSTOMERS_SCRIPT = (
    _WRITE_CUSTOMER_FUNCTION
    + """
-- KEYS: each customer's hash and bucket index. ARGV: each customer's arguments (as
-- write_customer's above), one after the other. Returns each customer's 1 or 0, in order.
local written, a = {}, 1
for k = 1, #KEYS, 2 do
  written[#written + 1], a = write_customer(KEYS[k], KEYS[k + 1], ARGV, a)
end
return written
"""
)
"""A batch of WRITE_CUSTOMER_SCRIPT's writes as one command, on one Redis (a cluster's customers
spread over slots, where a pipeline of single writes does it): a command and a reply per
customer cost the client more than the writes cost Redis."""


READ_HASHES_SCRIPT = """
-- KEYS: hashes. Returns each one's fields and values (empty for none), or false for a key
-- that is no hash, in order.
local found = {}
for i, key in ipairs(KEYS) do
  local fields = redis.pcall('HGETALL', key)  -- one command a key, not a TYPE before it
  if fields['err'] then
    if string.sub(fields['err'], 1, 9) ~= 'WRONGTYPE' then return fields end
    found[i] = false
  else
    found[i] = fields
  end
end
return found
"""
"""Many customers read in one command and one reply, on one Redis (a cluster's keys spread
over slots, where a pipeline does it): a reply per hash costs the client more than the read."""


READ_STRINGS_SCRIPT = """
-- KEYS: strings. Returns each one's value (false for none), in order; a key that is no string
-- fails the call, as its GET would.
local found = {}
for i, key in ipairs(KEYS) do
  found[i] = redis.call('GET', key)
end
return found
"""
"""As READ_HASHES_SCRIPT, for strings (an import's tombstone look-ups): one reply, not one a key."""


RAISE_VERSION_SCRIPT = """
-- KEYS: a copy of the catalog version. ARGV: the version. Raises the copy, never lowers it.
local current = tonumber(redis.call('GET', KEYS[1]) or '') or -1
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
"""


STAMP_UPDATED_AT_SCRIPT = """
-- KEYS: a customer. ARGV: now, the record's email field, its updated_at field. Only a record
-- that exists (has its email) is stamped: an HSETNX on an erased customer would leave a hash
-- that hides their tombstone from the next import.
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then
  return redis.call('HSETNX', KEYS[1], ARGV[3], ARGV[1])
end
return 0
"""


TOUCH_CUSTOMER_SCRIPT = """
-- KEYS: a customer. ARGV: updated_at, the record's email field, its updated_at field.
-- A write that changes nothing but the activity time (a resubmitted form): no compare-and-set
-- and no new write version, so concurrent decisions about the customer need not be redone.
-- Returns 0 where the record is gone (erased meanwhile): the caller decides again.
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[1])
return 1
"""


READ_FOR_MINT_SCRIPT = """
-- KEYS: customer hashes. ARGV: the prefix of a history entry's field, then the fields to
-- read, the last one a purpose's state field, whose event is returned in its place. Returns
-- each hash's values (false for none), or false for a key that is no hash, in order.
local found = {}
local last = #ARGV - 1
for i, key in ipairs(KEYS) do
  local values = redis.pcall('HMGET', key, unpack(ARGV, 2))
  if values['err'] then
    found[i] = false
  else
    if values[last] then values[last] = redis.call('HGET', key, ARGV[1] .. values[last]) end
    found[i] = values
  end
end
return found
"""
"""A mint's read: only the fields it uses, and one consent event (one reply for a batch on one
Redis; a cluster runs it a key at a time, pipelined)."""


class ScriptCall(NamedTuple):
    script: AsyncScript
    keys: list[str]
    args: list[EncodableT]
    command: tuple[Any, ...] | None = None
    """Its EVALSHA command, when made beforehand (a Packed one: coalesce.py)."""


async def script_reply(call: ScriptCall, reply: Any) -> Any:
    """A script's reply from a pipeline: a server that lost the script (a restart) answered
    NOSCRIPT without running it, so it is loaded and run now."""
    if isinstance(reply, redis.exceptions.NoScriptError):
        return await call.script(keys=call.keys, args=call.args)
    if isinstance(reply, redis.exceptions.RedisError):
        raise reply
    return reply


class Scripts:
    """The scripts registered with one client."""

    def __init__(self, client: Redis) -> None:
        self.bump_generation = client.register_script(BUMP_GENERATION_SCRIPT)
        self.record_consent = client.register_script(RECORD_CONSENT_SCRIPT)
        self.record_audit = client.register_script(RECORD_AUDIT_SCRIPT)
        self.first_seen = client.register_script(FIRST_SEEN_SCRIPT)
        self.count_funnel = client.register_script(COUNT_FUNNEL_SCRIPT)
        self.read_funnels = client.register_script(READ_FUNNELS_SCRIPT)
        self.rate_count = client.register_script(RATE_COUNT_SCRIPT)
        self.write_customer = client.register_script(WRITE_CUSTOMER_SCRIPT)
        self.write_customers = client.register_script(WRITE_CUSTOMERS_SCRIPT)
        self.raise_version = client.register_script(RAISE_VERSION_SCRIPT)
        self.stamp_updated_at = client.register_script(STAMP_UPDATED_AT_SCRIPT)
        self.touch_customer = client.register_script(TOUCH_CUSTOMER_SCRIPT)
        self.read_hashes = client.register_script(READ_HASHES_SCRIPT)
        self.read_strings = client.register_script(READ_STRINGS_SCRIPT)
        self.read_for_mint = client.register_script(READ_FOR_MINT_SCRIPT)
