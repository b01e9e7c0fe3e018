"""Small helpers shared by integration tests."""

from __future__ import annotations

import html
import re
import time
from typing import Any, cast
from urllib.parse import urlsplit

import msgspec
import redis
from click.testing import CliRunner
from redis.asyncio import Redis as AsyncRedis

from prefill.apikeys import Scope, create_key
from prefill.cli import main
from prefill.links import LinkBuilder
from prefill.models import (
    AuditEntry,
    AuditKind,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    Customer,
)
from prefill.pseudonyms import Pseudonymizer
from prefill.store import Repository, Tombstone
from prefill.store.keys import BUCKETS, FEED_STREAMS, audit_shard_key, customer_key
from prefill.store.legacy import legacy_key
from prefill.store.records import decode_customer, decode_history, encode_event, state_field
from prefill.tokens import LinkClaims

FORM_ID = "spring-summit-2027"
CAMPAIGN_ID = "spring-summit-2027-invite"
FORM_PATH = f"/f/{FORM_ID}"
FEEDBACK_FORM_ID = "summit-feedback-2027"
FEEDBACK_CAMPAIGN_ID = "summit-feedback-2027"
API_PATH = f"/api/v1/forms/{FORM_ID}/prefill"


AUDIT_SHARD = re.compile(rb"pf:\{b:\d+\}:audit")
"""The name of an audit shard (store/keys.py)."""


def audit_shard_entries(client: redis.Redis | redis.RedisCluster) -> list[bytes]:
    """Every audit entry's JSON, from all the shards, oldest first."""
    with client.pipeline(transaction=False) as pipe:
        for bucket in range(BUCKETS):
            pipe.xrange(audit_shard_key(bucket))
        shards = cast("list[list[tuple[bytes, dict[bytes, bytes]]]]", pipe.execute())
    entries = sorted((tuple(map(int, i.split(b"-"))), f[b"e"]) for s in shards for i, f in s)
    return [raw for _, raw in entries]


def _by_stream_id(shards: list[list[tuple[bytes, dict[bytes, bytes]]]]) -> list[bytes]:
    entries = sorted((tuple(map(int, i.split(b"-"))), f[b"e"]) for s in shards for i, f in s)
    return [raw for _, raw in entries]


def feed_entries(client: redis.Redis | redis.RedisCluster) -> list[bytes]:
    """Every change feed entry's JSON, from all the shards, merged by stream id."""
    with client.pipeline(transaction=False) as pipe:
        for stream in FEED_STREAMS:
            pipe.xrange(stream)
        return _by_stream_id(pipe.execute())


async def feed_entries_of(client: AsyncRedis) -> list[bytes]:
    """`feed_entries` with an asyncio client."""
    shards = [await client.xrange(stream) for stream in FEED_STREAMS]
    return _by_stream_id(cast("list[list[tuple[bytes, dict[bytes, bytes]]]]", shards))


def relative(url: str) -> str:
    """Path and query of an absolute URL, for the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def registration_form(page: str) -> str:
    """The hosted form page's registration form (not "Not you?" or a withdrawal form)."""
    return page.split('<form class="registration"', 1)[1].split("</form>", 1)[0]


SHOWN_INPUT = re.compile(
    r'<input (?![^>]*type="checkbox"(?![^>]* checked))[^>]*name="([^"]+)"[^>]*value="([^"]*)"'
)
"""An input with its value, unless it is a box left unticked."""


def form_as_shown(page: str) -> dict[str, str]:
    """What the registration form would post as the page shows it (ticked boxes included)."""
    inputs = SHOWN_INPUT.findall(registration_form(page))
    return {name: html.unescape(value) for name, value in inputs}


def token_of(url: str) -> str:
    return urlsplit(url).query.removeprefix("t=")


async def claims_for(repository: Repository, customer_id: str) -> LinkClaims:
    customer = await repository.get_customer(customer_id)
    generation = customer.generation if customer else 0
    return LinkClaims(customer_id, CAMPAIGN_ID, generation)


async def form_link(repository: Repository, links: LinkBuilder, customer_id: str) -> str:
    return relative(links.form_url(await claims_for(repository, customer_id), FORM_ID))


async def feedback_link(repository: Repository, links: LinkBuilder, customer_id: str) -> str:
    """The customer's link to the example feedback form, from its own campaign."""
    claims = await claims_for(repository, customer_id)
    feedback = LinkClaims(customer_id, FEEDBACK_CAMPAIGN_ID, claims.generation)
    return relative(links.form_url(feedback, FEEDBACK_FORM_ID))


async def card_link(repository: Repository, links: LinkBuilder, customer_id: str) -> str:
    return relative(links.card_url(await claims_for(repository, customer_id)))


async def set_consent(
    repository: Repository,
    customer_id: str,
    action: ConsentAction,
    purpose: str = "personalization",
) -> None:
    """Through the repository's one consent write (the Lua script), as every writer does."""
    event = ConsentEvent(
        purpose=purpose, action=action, at=time.time(), source=ConsentSource.ADMIN, actor="test"
    )
    outcome = await repository.record_consent(customer_id, event)
    assert outcome.status in ("recorded", "unchanged"), outcome


async def refusals_today(repository: Repository) -> dict[str, int]:
    """Today's counts of refusals whose signature did not verify, by `<channel>:<cause>`."""
    return await repository.refusal_counts(time.strftime("%Y-%m-%d", time.gmtime()))


async def refusals_of(repository: Repository, customer_id: str) -> dict[str, int]:
    """Today's counts of a customer's refused (validly signed) links, by `<channel>:<cause>`."""
    day = time.strftime("%Y-%m-%d", time.gmtime())
    counts = await repository.customer_refusals(customer_id)
    return {k.removeprefix(f"{day}:"): v for k, v in counts.items() if k.startswith(day)}


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """`prefill <args>` in-process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, list(args), env=env, input=stdin)
    return result.exit_code, result.stdout, result.stderr


Headers = dict[str, str]


async def key_headers(repository: Repository, *scopes: Scope) -> Headers:
    """Request headers with a new admin API key holding `scopes`."""
    new = create_key("test " + ",".join(scopes), list(scopes))
    await repository.save_api_key(new.key)
    return {"Authorization": f"Bearer {new.secret}"}


OLD_SCHEMA_DAY = "2026-12-01"


def write_old_schema(client: redis.Redis | redis.RedisCluster, pseudonyms: Pseudonymizer) -> None:
    """Data as the service wrote it before buckets: two customers, an erasure, the audit."""
    for n in (1, 2):
        cid = f"old-{n}"
        record = Customer(id=cid, email=f"old{n}@example.com", first_name=f"Old{n}")
        client.hset(
            f"pf:{{c:{cid}}}:customer",
            mapping={"record": msgspec.json.encode(record), "generation": 3, "updated_at": 1.0},
        )
        event = msgspec.json.encode(
            ConsentEvent("personalization", ConsentAction.GRANTED, 1.0, ConsentSource.IMPORT)
        )
        client.hset(f"pf:{{c:{cid}}}:consent", "personalization", event)
        client.rpush(f"pf:{{c:{cid}}}:consent:log", event)
        client.hset(f"pf:{{c:{cid}}}:refused", f"{OLD_SCHEMA_DAY}:page:expired", 2)
        client.expire(f"pf:{{c:{cid}}}:refused", 3600)
        entry = msgspec.json.encode(
            AuditEntry(kind=AuditKind.DISCLOSURE, at=time.time(), customer_id=cid)
        )
        entry_id = client.xadd("pf:{audit}:events", {"e": entry})
        client.xadd(f"pf:{{c:{cid}}}:audit", {"e": entry}, id=entry_id)
    anonymous = msgspec.json.encode(AuditEntry(kind=AuditKind.ADMIN, at=time.time()))
    client.xadd("pf:{audit}:events", {"e": anonymous})
    pseudonym = pseudonyms.of("gone-1")
    tombstone = Tombstone(erased_at=1.0, generation_floor=5, withdrawn=[], pseudonym=pseudonym)
    client.set(f"pf:{{erased}}:{pseudonym}", msgspec.json.encode(tombstone), ex=3600)
    client.hset(f"pf:{{audit}}:refused:{OLD_SCHEMA_DAY}", "page:forged", 4)
    client.set("pf:{audit}:rate:abc", 1, ex=60)


def stored_customer(client: redis.Redis | redis.RedisCluster, customer_id: str) -> dict[str, Any]:
    """A customer's record as its hash holds it (store/records.py), as plain values; {} for
    none."""
    fields = cast("dict[bytes, bytes]", client.hgetall(customer_key(customer_id)))
    customer = decode_customer(customer_id, fields).customer
    return {} if customer is None else cast("dict[str, Any]", msgspec.to_builtins(customer))


def stored_history(
    client: redis.Redis | redis.RedisCluster, customer_id: str
) -> list[ConsentEvent]:
    """A customer's consent history as its hash holds it, oldest first."""
    return decode_history(cast("dict[bytes, bytes]", client.hgetall(customer_key(customer_id))))


def append_consent(
    client: redis.Redis | redis.RedisCluster, customer_id: str, event: ConsentEvent
) -> None:
    """An event appended behind the service's back, as its consent script writes one: the
    history entry, the state pointing at it, the hash's write version raised."""
    key = customer_key(customer_id)
    index = int(cast("bytes | None", client.hget(key, "n")) or 0)
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={f"h.{index}": encode_event(event), "n": index + 1})
        pipe.hset(key, state_field(event.purpose), index)
        pipe.hincrby(key, "v", 1)
        pipe.execute()


def write_several_keys(
    client: redis.Redis | redis.RedisCluster, customer: Customer, events: list[ConsentEvent]
) -> None:
    """A customer as the service wrote one before the one hash: the record as JSON beside its
    generation, the consent state per purpose and the log, in three keys."""
    record = msgspec.json.encode(customer)
    client.hset(
        legacy_key(customer.id, "customer"),
        mapping={"record": record, "generation": customer.generation, "updated_at": 1.5},
    )
    for event in events:
        client.rpush(legacy_key(customer.id, "consent:log"), msgspec.json.encode(event))
        client.hset(legacy_key(customer.id, "consent"), event.purpose, msgspec.json.encode(event))
