"""The admin API against a real Redis: keys and scopes, records, consent, audit, export, erasure."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from prefill.apikeys import Scope
from prefill.imports import import_directory
from prefill.links import LinkBuilder
from prefill.settings import Settings
from prefill.storage import EmbeddedRedis
from prefill.store import Repository
from prefill.web.admin import ADMIN_PATH
from tests.conftest import EXAMPLES, PUBLIC_URL, make_settings
from tests.helpers import FORM_PATH, Headers, feed_entries_of, form_link, key_headers

A = ADMIN_PATH


@pytest.fixture
def settings(redis_url: str) -> Settings:
    # These tests present many wrong keys from the test client's one address on purpose; the
    # limit on that is tested in test_rate_limits.py.
    return make_settings(redis_url, admin_failures_per_address=10_000)


@pytest.fixture
async def admin_headers(repository: Repository) -> Headers:
    return await key_headers(repository, *Scope)


@pytest.fixture
async def reader_headers(repository: Repository) -> Headers:
    return await key_headers(repository, Scope.READ)


def admin_routes(app: Litestar) -> list[tuple[str, str]]:
    """(method, path with sample ids) of every admin route, from the app itself."""
    found: list[tuple[str, str]] = []
    for route in app.routes:
        if not route.path.startswith(A):
            continue
        path = re.sub(r"\{(\w+):\w+\}", "cust-1001", route.path)
        found += [(m, path) for m in sorted(route.methods) if m not in ("HEAD", "OPTIONS")]
    return found


async def test_every_admin_route_needs_a_key_and_the_right_scope(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    reader_headers: Headers,
    repository: Repository,
) -> None:
    routes = admin_routes(app)
    assert len(routes) >= 25
    wrong_key = {"Authorization": "Bearer pfk_000000000000_" + "x" * 43}
    for method, path in routes:
        for headers in ({}, wrong_key, {"Authorization": "Basic dXNlcjpwYXNz"}):
            # A body that would not even validate: the key is checked first.
            answer = await client.request(method, path, headers=headers, content=b"{")
            assert answer.status_code == 401, (method, path)
            # Read-only pages the dashboard links to ask a browser for the key; all else, Bearer.
            scheme = "Basic" if path.startswith(f"{A}/funnel") else "Bearer"
            assert answer.headers["www-authenticate"].startswith(scheme), (method, path)
        if method != "GET":
            answer = await client.request(method, path, headers=reader_headers, json={})
            assert answer.status_code == 403, (method, path)
            assert "scope" in answer.json()["detail"]
    # Reads with a read key work; the refused writes changed nothing.
    answer = await client.get(f"{A}/customers/cust-1001", headers=reader_headers)
    assert answer.status_code == 200
    assert answer.json()["email"] == "matti.korhonen@lampo.example"
    assert all(e.source != "admin" for e in await repository.consent_history("cust-1001"))


def body_routes(app: Litestar) -> list[tuple[str, str]]:
    """(method, path) of every admin operation that takes a JSON body."""
    found: list[tuple[str, str]] = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if route.path.startswith(A) and handler.opt.get("json_body"):
                path = re.sub(r"\{(\w+):\w+\}", "cust-1001", route.path)
                found += [(m, path) for m in sorted(handler.http_methods)]
    return found


async def test_admin_writes_take_json_only(
    app: Litestar, client: AsyncTestClient[Litestar], admin_headers: Headers
) -> None:
    routes = body_routes(app)
    assert ("PUT", f"{A}/customers/cust-1001") in routes
    assert len(routes) >= 6
    before = (await client.get(f"{A}/customers/cust-1001", headers=admin_headers)).json()
    body = json.dumps({**before, "first_name": "Changed"}).encode()
    for method, path in routes:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = dict(admin_headers)
            if content_type:
                headers["Content-Type"] = content_type
            answer = await client.request(method, path, headers=headers, content=body)
            assert answer.status_code == 415, (method, path, content_type)
            assert "application/json" in answer.json()["detail"]
        # Without a key the answer is still 401: the key is checked first.
        plain = {"Content-Type": "text/plain"}
        assert (await client.request(method, path, headers=plain, content=body)).status_code == 401
    after = (await client.get(f"{A}/customers/cust-1001", headers=admin_headers)).json()
    assert after == before
    json_with_charset = {**admin_headers, "Content-Type": "application/json; charset=utf-8"}
    answer = await client.put(f"{A}/customers/cust-1001", headers=json_with_charset, content=body)
    assert answer.status_code == 200, answer.text
    schema = (await client.get("/schema/openapi.json")).json()
    assert "415" in schema["paths"][f"{A}/customers/{{customer_id}}"]["put"]["responses"]
    assert "415" not in schema["paths"][f"{A}/customers/{{customer_id}}"]["get"]["responses"]


async def test_a_revoked_key_stops_working_at_once(
    client: AsyncTestClient[Litestar], admin_headers: Headers, repository: Repository
) -> None:
    created = await client.post(
        f"{A}/keys", headers=admin_headers, json={"name": "support", "scopes": ["read"]}
    )
    assert created.status_code == 201
    new_key = created.json()
    support = {"Authorization": f"Bearer {new_key['secret']}"}
    assert (await client.get(f"{A}/forms", headers=support)).status_code == 200
    listed = (await client.get(f"{A}/keys", headers=admin_headers)).json()
    assert "support" in [k["name"] for k in listed]
    assert all("secret" not in k and "digest" not in k for k in listed)
    key_admin = await key_headers(repository, Scope.KEYS)
    escalation = await client.post(
        f"{A}/keys", headers=key_admin, json={"name": "sneaky", "scopes": ["erase"]}
    )
    assert escalation.status_code == 403
    assert escalation.json()["detail"] == "this key cannot grant scopes it does not have: erase"
    revoked = await client.delete(f"{A}/keys/{new_key['key']['id']}", headers=admin_headers)
    assert revoked.status_code == 204
    assert (await client.get(f"{A}/forms", headers=support)).status_code == 401


async def test_keys_are_stored_hashed(
    client: AsyncTestClient[Litestar], admin_headers: Headers, redis_client: Redis
) -> None:
    created = await client.post(
        f"{A}/keys", headers=admin_headers, json={"name": "crm", "scopes": ["consent"]}
    )
    secret = created.json()["secret"]
    stored = [await redis_client.get(k) async for k in redis_client.scan_iter("pf:{keys}:*")]
    assert stored
    assert all(secret.split("_", 2)[2].encode() not in value for value in stored if value)


async def test_grant_withdraw_grant_gives_an_ordered_complete_history(
    client: AsyncTestClient[Litestar],
    admin_headers: Headers,
    repository: Repository,
    links: LinkBuilder,
) -> None:
    url = await form_link(repository, links, "cust-1001")
    consent_url = f"{A}/customers/cust-1001/consent"
    headers = admin_headers | {"User-Agent": "support-desk/1.0"}
    shown = []
    for action in ("granted", "withdrawn", "granted"):
        body = {"purpose": "personalization", "action": action}
        if action == "granted":
            body["notice_version"] = "2027-01"
        answer = await client.post(consent_url, headers=headers, json=body)
        assert answer.status_code == 201, answer.text
        shown.append("Matti" in (await client.get(url)).text)
    assert shown == [True, False, True]
    state = (await client.get(consent_url, headers=admin_headers)).json()
    admin_events = [e for e in state["history"] if e["source"] == "admin"]
    assert [e["action"] for e in admin_events] == ["granted", "withdrawn", "granted"]
    assert [e["at"] for e in admin_events] == sorted(e["at"] for e in admin_events)
    assert [e["notice_version"] for e in admin_events] == ["2027-01", "", "2027-01"]
    for event in admin_events:
        assert event["actor"].startswith("key:")
        assert event["user_agent"] == "support-desk/1.0"
        assert "ip_prefix" in event  # the test client has no IP address; truncate_ip is unit-tested
    assert state["current"]["personalization"]["action"] == "granted"


async def test_a_retried_request_id_is_recorded_once(
    client: AsyncTestClient[Litestar], admin_headers: Headers, repository: Repository
) -> None:
    before = len(await repository.consent_history("cust-1002"))
    url = f"{A}/customers/cust-1002/consent"
    body = {"purpose": "email_marketing", "action": "withdrawn"}
    headers = admin_headers | {"Idempotency-Key": "req-42"}
    first = await client.post(url, headers=headers, json=body)
    # A retry through another proxy, with another agent, is the same request.
    again = await client.post(url, headers=headers | {"User-Agent": "retrier/2"}, json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["status"] == "replayed"
    assert again.json()["event"] == first.json()["event"]
    assert len(await repository.consent_history("cust-1002")) == before + 1
    other = {"action": "granted", "notice_version": "em-2026-01"}
    other_body = await client.post(url, headers=headers, json=body | other)
    assert other_body.status_code == 409
    assert "Idempotency-Key" in other_body.json()["detail"]
    # Without a request id, repeating the current state records nothing either.
    same = await client.post(url, headers=admin_headers, json=body)
    assert (same.status_code, same.json()["status"]) == (200, "unchanged")
    assert len(await repository.consent_history("cust-1002")) == before + 1


async def test_consent_for_an_unknown_customer_is_a_404_naming_it(
    client: AsyncTestClient[Litestar], admin_headers: Headers
) -> None:
    body = {"purpose": "personalization", "action": "granted", "notice_version": "pz-2026-01"}
    unknown = await client.post(f"{A}/customers/nobody/consent", headers=admin_headers, json=body)
    assert unknown.status_code == 404
    assert "nobody" in unknown.json()["detail"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"purpose": "personalization", "action": "maybe"}, "action"),
        ({"purpose": "emial_marketing", "action": "withdrawn"}, "purpose"),
        ({"purpose": "personalization", "action": "granted"}, "notice_version"),
    ],
    ids=["unknown action", "unknown purpose", "grant without notice version"],
)
async def test_a_malformed_consent_change_is_a_400_naming_the_field(
    client: AsyncTestClient[Litestar], admin_headers: Headers, body: dict[str, str], named: str
) -> None:
    answer = await client.post(f"{A}/customers/cust-1001/consent", headers=admin_headers, json=body)
    assert answer.status_code == 400
    assert named in answer.text


async def test_validation_errors_name_the_field(
    client: AsyncTestClient[Litestar], admin_headers: Headers
) -> None:
    record = {"id": "cust-9", "email": "not an email"}
    answer = await client.put(f"{A}/customers/cust-9", headers=admin_headers, json=record)
    assert answer.status_code == 400
    assert "email" in answer.text
    mismatch = await client.put(
        f"{A}/customers/cust-9", headers=admin_headers, json={"id": "cust-8", "email": "a@b.fi"}
    )
    assert mismatch.status_code == 400
    assert "path" in mismatch.json()["detail"]
    no_email = {"id": "f-x", "title": {"en": "X"}, "fields": [{"name": "a", "label": {"en": "A"}}]}
    emailless = await client.put(f"{A}/forms/f-x", headers=admin_headers, json=no_email)
    assert emailless.status_code == 422
    assert "prefill_from 'email'" in emailless.json()["detail"]
    campaign = {"id": "c-new", "form_id": "no-such-form"}
    dangling = await client.put(f"{A}/campaigns/c-new", headers=admin_headers, json=campaign)
    assert dangling.status_code == 422
    assert "no-such-form" in dangling.json()["detail"]


async def test_records_can_be_created_read_replaced_and_deleted(
    client: AsyncTestClient[Litestar], admin_headers: Headers
) -> None:
    contact = {
        "id": "anna-berg",
        "name": "Anna Berg",
        "title": {"en": "Account manager"},
        "email": "anna.berg@kaamos.example",
    }
    put = await client.put(f"{A}/contacts/anna-berg", headers=admin_headers, json=contact)
    assert put.status_code == 201
    replaced = await client.put(
        f"{A}/contacts/anna-berg", headers=admin_headers, json=contact | {"phone": "+358 40 1"}
    )
    assert replaced.status_code == 200
    read = await client.get(f"{A}/contacts/anna-berg", headers=admin_headers)
    assert read.json()["phone"] == "+358 40 1"

    customer = {"id": "cust-2001", "email": "liisa@example.fi", "owner_id": "anna-berg"}
    created = await client.put(f"{A}/customers/cust-2001", headers=admin_headers, json=customer)
    assert (created.status_code, created.json()["generation"]) == (201, 0)
    in_use = await client.delete(f"{A}/forms/spring-summit-2027", headers=admin_headers)
    assert in_use.status_code == 409
    assert "spring-summit-2027-invite" in in_use.json()["detail"]
    gone = await client.delete(f"{A}/contacts/anna-berg", headers=admin_headers)
    assert gone.status_code == 204
    assert (await client.get(f"{A}/contacts/anna-berg", headers=admin_headers)).status_code == 404

    page = (await client.get(f"{A}/customers", headers=admin_headers)).json()
    ids = set(page["ids"])
    while page["cursor"]:
        page = (
            await client.get(f"{A}/customers?cursor={page['cursor']}", headers=admin_headers)
        ).json()
        ids |= set(page["ids"])
    assert {"cust-1001", "cust-2001"} <= ids


async def test_a_revoked_campaign_stays_revoked(
    client: AsyncTestClient[Litestar],
    admin_headers: Headers,
    repository: Repository,
    links: LinkBuilder,
) -> None:
    url = await form_link(repository, links, "cust-1001")
    revoked = await client.post(
        f"{A}/campaigns/spring-summit-2027-invite/revoke", headers=admin_headers
    )
    assert (revoked.status_code, revoked.json()["state"]) == (200, "revoked")
    assert "Matti" not in (await client.get(url)).text
    campaign = revoked.json() | {"state": "active"}
    again = await client.put(
        f"{A}/campaigns/spring-summit-2027-invite", headers=admin_headers, json=campaign
    )
    assert again.status_code == 409
    assert "Matti" not in (await client.get(url)).text
    # Deleting it only revokes it: its id stays taken, so it cannot come back as new.
    campaign_url = f"{A}/campaigns/spring-summit-2027-invite"
    assert (await client.delete(campaign_url, headers=admin_headers)).status_code == 204
    assert (await client.get(campaign_url, headers=admin_headers)).json()["state"] == "revoked"
    assert (await client.put(campaign_url, headers=admin_headers, json=campaign)).status_code == 409
    assert "Matti" not in (await client.get(url)).text


async def test_links_minted_through_the_api_open(
    client: AsyncTestClient[Litestar], admin_headers: Headers
) -> None:
    answer = await client.post(
        f"{A}/campaigns/spring-summit-2027-invite/links",
        headers=admin_headers,
        json={"customer_ids": ["cust-1001", "nobody"]},
    )
    assert answer.status_code == 200
    result = answer.json()
    assert result["skipped"] == [{"customer_id": "nobody", "reason": "unknown customer id"}]
    (minted,) = result["links"]
    assert minted["unsubscribe_url"].startswith(f"{PUBLIC_URL}/u?t=")
    assert minted["list_unsubscribe"] == f"<{minted['unsubscribe_url']}>"
    assert minted["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
    page = await client.get(minted["form_url"].removeprefix(PUBLIC_URL))
    assert "Matti" in page.text


async def test_the_audit_is_queryable_per_customer_and_time(
    client: AsyncTestClient[Litestar],
    admin_headers: Headers,
    repository: Repository,
    links: LinkBuilder,
) -> None:
    start = time.time()
    await client.get(await form_link(repository, links, "cust-1001"))
    await client.get(await form_link(repository, links, "cust-1002"))
    await client.post(
        f"{A}/customers/cust-1001/consent",
        headers=admin_headers,
        json={"purpose": "email_marketing", "action": "withdrawn"},
    )
    entries = (await client.get(f"{A}/audit?customer_id=cust-1001", headers=admin_headers)).json()
    assert {e["customer_id"] for e in entries} == {"cust-1001"}
    assert [e["kind"] for e in entries] == ["consent", "disclosure"]  # newest first
    assert entries[1]["channel"] == "page"
    assert entries[1]["fields"]
    everyone = (await client.get(f"{A}/audit?since={start}", headers=admin_headers)).json()
    assert {"cust-1001", "cust-1002"} <= {e.get("customer_id") for e in everyone}
    none_yet = (await client.get(f"{A}/audit?until={start - 60}", headers=admin_headers)).json()
    assert none_yet == []


async def test_export_holds_everything_about_one_customer_and_nothing_of_another(
    client: AsyncTestClient[Litestar],
    admin_headers: Headers,
    repository: Repository,
    links: LinkBuilder,
) -> None:
    await client.get(await form_link(repository, links, "cust-1001"))
    await client.get(await form_link(repository, links, "cust-1002"))
    await client.get(f"{FORM_PATH}?t=garbage")
    answer = await client.get(f"{A}/customers/cust-1001/export", headers=admin_headers)
    assert answer.status_code == 200
    export = answer.json()
    assert export["customer"]["email"] == "matti.korhonen@lampo.example"
    assert export["consent"]["history"]
    assert export["audit"][0]["channel"] == "page"
    other = await repository.get_customer("cust-1002")
    assert other is not None
    for value in (other.id, other.email, other.first_name, other.last_name):
        assert value not in answer.text
    # The export is itself a disclosure, and is audited as one.
    audit = await repository.audit_entries(customer_id="cust-1001")
    assert audit[0].channel == "export"


@pytest.mark.single_redis(reason="reads the server's append-only files")
async def test_erasure_removes_every_key_and_kills_the_links_for_good(
    client: AsyncTestClient[Litestar],
    admin_headers: Headers,
    repository: Repository,
    links: LinkBuilder,
    redis_client: Redis,
    redis_server: EmbeddedRedis,
) -> None:
    url = await form_link(repository, links, "cust-1001")
    assert "Matti" in (await client.get(url)).text
    generic = await client.get(FORM_PATH)
    erased = await client.delete(f"{A}/customers/cust-1001", headers=admin_headers)
    assert erased.status_code == 200, erased.text
    assert erased.json()["kept"]["withdrawn"] == ["email_marketing", "personalization"]
    page = await client.get(url)  # an old link clicked after the erasure
    assert (page.status_code, page.content) == (generic.status_code, generic.content)
    assert [k async for k in redis_client.scan_iter("*cust-1001*")] == []
    shared = await repository.audit_entries()
    assert "cust-1001" not in {e.customer_id for e in shared}
    assert shared[0].action == "customer.erase"
    assert shared[0].target.startswith("erased:")
    changes = await feed_entries_of(redis_client)
    assert [c for c in changes if b"cust-1001" in c] == [changes[-1]]  # only the erasure notice
    assert b'"kind":"erasure"' in changes[-1]
    read = await client.get(f"{A}/customers/cust-1001", headers=admin_headers)
    assert read.status_code == 404
    again = await client.delete(f"{A}/customers/cust-1001", headers=admin_headers)
    assert again.status_code == 404

    # The CRM exports the customer again, consent columns and all: the old links stay dead,
    # and the withdrawal the erasure implies holds.
    await import_directory(repository, EXAMPLES)
    assert "Matti" not in (await client.get(url)).text
    fresh = await form_link(repository, links, "cust-1001")
    assert "Matti" not in (await client.get(fresh)).text

    await client.delete(f"{A}/customers/cust-1001", headers=admin_headers)
    aof = next(redis_server.data_dir.rglob("*.aof"))
    assert b"matti.korhonen@lampo.example" in aof.read_bytes()  # until the log is rewritten
    await redis_client.bgrewriteaof()
    deadline = time.monotonic() + 10
    while True:
        persistence = await redis_client.info("persistence")
        if not (persistence["aof_rewrite_in_progress"] or persistence["aof_rewrite_scheduled"]):
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    files = [p for p in redis_server.data_dir.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".aof") for p in files)
    for path in files:
        assert b"matti.korhonen@lampo.example" not in path.read_bytes(), path


@pytest.fixture
async def split_client(redis_url: str, examples: None) -> AsyncIterator[AsyncTestClient[Litestar]]:
    from prefill.app import create_app

    app = create_app(make_settings(redis_url, admin_port=9444))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        yield client


async def test_a_separate_admin_port_keeps_the_admin_api_off_the_public_port(
    split_client: AsyncTestClient[Litestar], repository: Repository
) -> None:
    client, admin_port = split_client, "http://testserver.local:9444"
    headers = await key_headers(repository, Scope.READ)
    assert (await client.get(f"{A}/forms", headers=headers)).status_code == 404
    assert (await client.get(f"{admin_port}{A}/forms", headers=headers)).status_code == 200
    assert (await client.get(f"{admin_port}{FORM_PATH}")).status_code == 404
    assert (await client.get(FORM_PATH)).status_code == 200
    assert (await client.get(f"{admin_port}/health/live")).status_code == 200


async def test_reading_a_record_through_the_admin_api_is_an_audited_disclosure(
    client: AsyncTestClient[Litestar], reader_headers: Headers, repository: Repository
) -> None:
    assert (await client.get(f"{A}/customers/cust-1003", headers=reader_headers)).is_success
    assert (await client.get(f"{A}/customers/cust-1003/consent", headers=reader_headers)).is_success
    entries = await repository.audit_entries(customer_id="cust-1003")
    assert [(e.kind, e.channel, e.fields) for e in entries] == [
        ("disclosure", "admin", ["consent"]),
        ("disclosure", "admin", ["*"]),
    ]
    assert all(e.actor.startswith("key:") for e in entries)


async def test_a_retry_writes_the_audit_and_feed_entries_a_failed_first_try_missed(
    client: AsyncTestClient[Litestar], admin_headers: Headers, repository: Repository
) -> None:
    from prefill.consent_writes import request_fingerprint
    from prefill.models import ConsentAction, ConsentEvent, ConsentSource

    # The first try stored the event, then Redis went away before its audit and feed entries.
    event = ConsentEvent(
        purpose="email_marketing",
        action=ConsentAction.WITHDRAWN,
        at=time.time(),
        source=ConsentSource.ADMIN,
    )
    await repository.record_consent("cust-1003", event, "req-7", request_fingerprint(event))
    assert await repository.audit_entries(customer_id="cust-1003") == []
    headers = admin_headers | {"Idempotency-Key": "req-7"}
    body = {"purpose": "email_marketing", "action": "withdrawn"}
    url = f"{A}/customers/cust-1003/consent"
    for _ in range(2):
        answer = await client.post(url, headers=headers, json=body)
        assert answer.json()["status"] == "replayed"
    consent_entries = [
        e for e in await repository.audit_entries(customer_id="cust-1003") if e.kind == "consent"
    ]
    assert len(consent_entries) == 1  # written by the first retry, not again by the second
    history = await repository.consent_history("cust-1003")
    assert sum(e.source == "admin" for e in history) == 1


@pytest.mark.parametrize(
    ("path", "record", "field"),
    [
        ("contacts/anna-berg", {"name": "Anna\rTEL:+15550003"}, "name"),
        ("contacts/anna-berg", {"phone": "+358401111111\rTEL:+15550003"}, "phone"),
        ("contacts/anna-berg", {"title": {"en": "AM\nTEL:+15550003"}}, "title"),
        ("customers/cust-9", {"first_name": "Eve\x00"}, "first_name"),
        ("customers/cust-9", {"attributes": {"diet": "x\x1bTEL:+1"}}, "attributes"),
    ],
)
async def test_control_characters_are_refused_naming_the_field_not_the_value(
    client: AsyncTestClient[Litestar],
    admin_headers: Headers,
    path: str,
    record: dict[str, object],
    field: str,
) -> None:
    base: dict[str, object] = (
        {"id": "anna-berg", "name": "Anna Berg", "title": {"en": "AM"}, "email": "a@kaamos.example"}
        if path.startswith("contacts")
        else {"id": "cust-9", "email": "eve@example.fi"}
    )
    answer = await client.put(f"{A}/{path}", headers=admin_headers, json=base | record)
    assert answer.status_code == 400
    assert [e["key"].partition("[")[0] for e in answer.json()["extra"]] == [field]
    assert "TEL:" not in answer.text
    assert (await client.get(f"{A}/{path}", headers=admin_headers)).status_code == 404


async def test_a_forms_event_is_checked_and_kept_with_its_zones_offset(
    client: AsyncTestClient[Litestar], admin_headers: Headers
) -> None:
    form = {
        "id": "f-event",
        "title": {"en": "Open house"},
        "fields": [{"name": "email", "label": {"en": "Email"}, "prefill_from": "email"}],
        "event": {
            "start": "2027-10-31T09:00:00",
            "end": "2027-10-31T12:00:00",
            "time_zone": "Europe/Stockholm",
            "online_url": "https://kaamos.example/open-house",
        },
    }
    saved = await client.put(f"{A}/forms/f-event", headers=admin_headers, json=form)
    assert saved.status_code == 201, saved.text
    read = await client.get(f"{A}/forms/f-event", headers=admin_headers)
    # 31 October 2027 is after the change back to winter time in Stockholm: +01:00.
    assert read.json()["event"]["start"] == "2027-10-31T09:00:00+01:00"

    problems = {
        "end": ("2027-10-31T08:00:00", "the event must end after it starts"),
        "time_zone": ("Mars/Olympus_Mons", "unknown time zone 'Mars/Olympus_Mons'"),
        "online_url": ("javascript:alert(1)", '"key":"event.online_url"'),
    }
    for name, (value, message) in problems.items():
        bad = form | {"event": form["event"] | {name: value}}  # type: ignore[operator]
        answer = await client.put(f"{A}/forms/f-event", headers=admin_headers, json=bad)
        assert answer.status_code == 400, answer.text
        assert message in answer.text
