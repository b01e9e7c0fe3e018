"""The main path through the real app and a real Redis: a link opens the prefilled form."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import cast
from unittest import mock

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from prefill.app import STATIC_CACHE_SECONDS, create_app
from prefill.links import LinkBuilder
from prefill.models import CampaignState, ConsentAction
from prefill.store import Repository
from prefill.store.keys import audit_shard_key, bucket_of, customer_key
from prefill.tokens import LinkClaims, LinkSigner, TokenPurpose
from prefill.web.headers import DOCUMENT_HEADERS, PRIVACY_HEADERS
from tests.conftest import PSEUDONYMS, PUBLIC_URL, make_settings
from tests.helpers import (
    CAMPAIGN_ID,
    FORM_ID,
    FORM_PATH,
    append_consent,
    card_link,
    form_link,
    refusals_of,
    refusals_today,
    set_consent,
)
from tests.topology import sync_client

Client = AsyncTestClient[Litestar]


@pytest.mark.parametrize(
    ("customer_id", "lang", "label", "values", "contact"),
    [
        (
            "cust-1001",
            "fi",
            "Etunimi",
            ["Matti", "Korhonen", "Lämpötekniikka Korhonen Oy"],
            "Aino Virtanen",
        ),
        (
            "cust-1003",
            "sv",
            "Förnamn",
            ["Björn", "Åkerlund", "Kvarkens Analys Ab"],
            "Johan Lindqvist",
        ),
        ("cust-1005", "en", "First name", ["Kadri", "Tamm", "Tallinn BioMõõt OÜ"], "Emily Carter"),
    ],
)
async def test_link_opens_the_prefilled_form_in_the_customers_language(
    client: Client,
    repository: Repository,
    links: LinkBuilder,
    customer_id: str,
    lang: str,
    label: str,
    values: list[str],
    contact: str,
) -> None:
    response = await client.get(
        await form_link(repository, links, customer_id), headers={"Accept-Language": "de"}
    )
    assert response.status_code == 200
    page = response.text
    assert f'<html lang="{lang}">' in page
    assert label in page
    for value in values:
        assert f'value="{value}"' in page.replace("&#39;", "'")
    assert contact in page
    assert 'action="/f/spring-summit-2027/not-you"' in page


async def test_personal_pages_carry_the_privacy_headers(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    response = await client.get(await form_link(repository, links, "cust-1001"))
    headers = response.headers
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert "noindex" in headers["x-robots-tag"]
    assert "default-src 'none'" in headers["content-security-policy"]
    # The one cookie is the CSRF token of the form's submit: random, HttpOnly, same-site only.
    (cookie,) = headers.get_list("set-cookie")
    assert cookie.startswith("prefill_csrf=")
    assert "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    assert "cust-1001" not in cookie
    assert "Matti" not in cookie
    # No third-party resources: every src/href is local or a tel:/mailto: link.
    for marker in ('src="http', 'href="http', 'src="//', 'href="//'):
        assert marker not in response.text


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health/live", 200),  # a fast route
        ("GET", f"/api/v1/forms/{FORM_ID}/prefill", 200),  # a fast route, generic (no token)
        ("GET", "/no/such/page?t=a-token", 404),  # answered before a route is found
        ("PUT", FORM_PATH, 405),  # likewise
        ("POST", f"{FORM_PATH}/submit", 403),  # refused by CSRF, outside the request layer
        ("GET", "/static/prefill.css", 200),  # a static asset: cached, the rest as anywhere
    ],
)
async def test_every_answer_carries_the_privacy_headers(
    client: Client, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    headers = response.headers
    for name, value in PRIVACY_HEADERS.items():
        assert headers.get_list(name) == [value], name
    caching = headers.get_list("cache-control")
    static = f"max-age={STATIC_CACHE_SECONDS}, public"
    assert caching == (["no-store"] if "static" not in path else [static])


@pytest.mark.parametrize(
    ("method", "path", "accept"),
    [
        ("GET", FORM_PATH, "text/html"),  # a page
        ("GET", "/health/live", "*/*"),  # JSON, a fast route
        ("GET", f"/api/v1/forms/{FORM_ID}/prefill", "*/*"),  # JSON, a fast route
        ("GET", "/no/such/page", "text/html"),  # an error page
        ("GET", "/no/such/page", "application/json"),  # a JSON error
        ("POST", f"{FORM_PATH}/submit", "text/html"),  # refused by CSRF
        ("GET", "/static/prefill.css", "*/*"),
        ("GET", "/widget.js", "*/*"),
    ],
)
async def test_only_documents_carry_the_document_headers(
    client: Client, method: str, path: str, accept: str
) -> None:
    """Cross-Origin-Opener-Policy and Permissions-Policy govern a document a browser renders:
    on everything but JSON, and on JSON nothing a browser would apply."""
    response = await client.request(method, path, headers={"Accept": accept})
    is_json = response.headers.get("content-type") == "application/json"
    for name, value in DOCUMENT_HEADERS.items():
        assert response.headers.get_list(name) == ([] if is_json else [value]), (name, path)
    if path.startswith(("/health", "/api")):
        assert is_json


async def test_only_the_form_page_sets_the_csrf_cookie(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    """CSRF protection runs on the form's page and submit only: no other page, not the form
    link's HEAD, hands out a cookie."""
    form = await form_link(repository, links, "cust-1001")
    card = await card_link(repository, links, "cust-1001")
    for path in ("/", card, f"{FORM_PATH}/thanks?lang=fi", "/health/live"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert "set-cookie" not in response.headers, path
    assert "set-cookie" not in (await client.head(form)).headers
    assert "prefill_csrf=" in (await client.get(form)).headers["set-cookie"]


async def test_masked_fields_never_show_the_full_value(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    page = (await client.get(await form_link(repository, links, "cust-1001"))).text
    assert "matti.korhonen@lampo.example" not in page
    assert "+358405551001" not in page
    assert 'value="m•••@lampo.example"' in page
    assert 'value="+358•••01"' in page


async def test_unprefillable_fields_stay_empty(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    page = (await client.get(await form_link(repository, links, "cust-1001"))).text
    assert re.search(r'<textarea[^>]*name="questions"[^>]*></textarea>', page)


@pytest.mark.parametrize(
    ("customer_id", "shown"),
    [("cust-1002", "Aino Virtanen"), ("cust-1006", "Kaamos Customer Team")],
)
async def test_deputy_or_team_replaces_a_missing_contact_person(
    client: Client, repository: Repository, links: LinkBuilder, customer_id: str, shown: str
) -> None:
    page = (await client.get(await form_link(repository, links, customer_id))).text
    assert shown in page
    assert "Pekka Nieminen" not in page


# -- every refusal looks the same ------------------------------------------------------------

Refusal = Callable[[Repository, LinkBuilder, Redis, LinkSigner], Awaitable[str]]


async def forged_one_character(
    repo: Repository, links: LinkBuilder, r: Redis, s: LinkSigner
) -> str:
    url = await form_link(repo, links, "cust-1001")
    middle = len(url) - 20
    return url[:middle] + ("x" if url[middle] != "x" else "y") + url[middle + 1 :]


async def signed_with_another_key(
    repo: Repository, links: LinkBuilder, r: Redis, s: LinkSigner
) -> str:
    other = LinkSigner(["another-secret-key-" + "z" * 40], 10**8)
    token = other.sign(TokenPurpose.FORM, LinkClaims("cust-1001", CAMPAIGN_ID, 0))
    return f"{FORM_PATH}?t={token}"


async def expired(repo: Repository, links: LinkBuilder, r: Redis, s: LinkSigner) -> str:
    # Signed 46 days ago; the example campaign's links live 45 days.
    long_ago = time.time() - 46 * 86_400
    with mock.patch.object(time, "time", return_value=long_ago):
        return await form_link(repo, links, "cust-1001")


async def revoked_customer(repo: Repository, links: LinkBuilder, r: Redis, s: LinkSigner) -> str:
    url = await form_link(repo, links, "cust-1001")
    await repo.bump_generation("cust-1001")
    return url


async def revoked_campaign(repo: Repository, links: LinkBuilder, r: Redis, s: LinkSigner) -> str:
    url = await form_link(repo, links, "cust-1001")
    assert await repo.set_campaign_state(CAMPAIGN_ID, CampaignState.REVOKED)
    return url


async def deleted_customer(repo: Repository, links: LinkBuilder, r: Redis, s: LinkSigner) -> str:
    url = await form_link(repo, links, "cust-1001")
    await r.delete(customer_key("cust-1001"))
    return url


async def consent_missing(repo: Repository, links: LinkBuilder, r: Redis, s: LinkSigner) -> str:
    return await form_link(repo, links, "cust-1007")


async def consent_withdrawn(repo: Repository, links: LinkBuilder, r: Redis, s: LinkSigner) -> str:
    await set_consent(repo, "cust-1001", ConsentAction.WITHDRAWN)
    return await form_link(repo, links, "cust-1001")


async def card_token_on_the_form(
    repo: Repository, links: LinkBuilder, r: Redis, s: LinkSigner
) -> str:
    card = await card_link(repo, links, "cust-1001")
    return f"{FORM_PATH}?{card.split('?', 1)[1]}"


async def unknown_campaign(repo: Repository, links: LinkBuilder, r: Redis, s: LinkSigner) -> str:
    token = s.sign(TokenPurpose.FORM, LinkClaims("cust-1001", "no-such-campaign", 0))
    return f"{FORM_PATH}?t={token}"


async def garbage(repo: Repository, links: LinkBuilder, r: Redis, s: LinkSigner) -> str:
    return f"{FORM_PATH}?t=%00%ff' OR 1=1 --" + "A" * 600


REFUSALS: list[tuple[Refusal, str]] = [
    (forged_one_character, "forged"),
    (signed_with_another_key, "forged"),
    (expired, "expired"),
    (revoked_customer, "revoked_customer"),
    (revoked_campaign, "revoked_campaign"),
    (deleted_customer, "unknown_customer"),
    (consent_missing, "consent_missing"),
    (consent_withdrawn, "consent_withdrawn"),
    (card_token_on_the_form, "forged"),
    (unknown_campaign, "unknown_campaign"),
    (garbage, "malformed"),
]


@pytest.mark.parametrize(("make_link", "cause"), REFUSALS, ids=[c for _, c in REFUSALS])
async def test_every_refused_link_gets_the_same_generic_form(
    client: Client,
    repository: Repository,
    links: LinkBuilder,
    redis_client: Redis,
    signer: LinkSigner,
    make_link: Refusal,
    cause: str,
) -> None:
    generic = await client.get(FORM_PATH, headers={"Accept-Language": "fi"})
    url = await make_link(repository, links, redis_client, signer)
    customer = "cust-1007" if cause == "consent_missing" else "cust-1001"
    counted_before = await refusals_today(repository)
    customer_before = await refusals_of(repository, customer)
    response = await client.get(url, headers={"Accept-Language": "fi"})
    assert response.status_code == generic.status_code == 200
    assert response.content == generic.content
    # The CSRF cookie comes with the first page a browser opens, whatever its link.
    unrelated = {"date": "", "set-cookie": "", "x-request-id": ""}
    assert dict(response.headers) | unrelated == dict(generic.headers) | unrelated
    assert "Matti" not in response.text
    key = f"page:{cause}"
    if cause in UNSIGNED_CAUSES:  # nobody to attribute it to
        assert (await refusals_today(repository))[key] == counted_before.get(key, 0) + 1
    else:
        assert (await refusals_of(repository, customer))[key] == customer_before.get(key, 0) + 1


async def test_a_forged_token_for_an_unknown_form_is_a_404_and_counted(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    """A token that does not verify is counted with the catalog's version read in the same
    round trip; the form is looked up in that catalog afterwards."""
    url = await form_link(repository, links, "cust-1001")
    forged = url.replace(FORM_PATH, "/f/no-such-form")[:-2] + "AA"
    before = (await refusals_today(repository)).get("page:forged", 0)
    response = await client.get(forged)
    assert response.status_code == 404
    assert (await refusals_today(repository))["page:forged"] == before + 1


async def test_a_form_added_on_another_instance_is_found_by_a_refused_link_at_once(
    client: Client, repository: Repository
) -> None:
    """The catalog's version read with the refusal's count is a fresh one: a form created
    since this instance last read the catalog is there on the very next request."""
    assert (await client.get("/f/added-later?t=junk")).status_code == 404
    catalog = await repository.load_catalog()
    form = catalog.forms[FORM_ID]
    await repository.save_catalog(forms=[msgspec.structs.replace(form, id="added-later")])
    assert (await client.get("/f/added-later?t=junk")).status_code == 200


# Nobody to attribute these to: unsigned, or naming a customer who does not (or no longer) exist.
UNSIGNED_CAUSES = {"forged", "malformed", "missing", "unknown_customer"}


async def test_refusals_cannot_flood_the_audit_stream(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    """Junk and replays of a revoked link are counted in constant space, not streamed."""
    revoked = await form_link(repository, links, "cust-1001")
    await repository.bump_generation("cust-1001")
    before = len(await repository.audit_entries())
    for attempt in range(50):
        await client.get(FORM_PATH, params={"t": f"junk-{attempt}"})
        await client.get(revoked)
    assert len(await repository.audit_entries()) == before
    assert (await refusals_today(repository))["page:forged"] >= 50
    assert (await refusals_of(repository, "cust-1001"))["page:revoked_customer"] == 50


async def test_a_link_with_one_character_changed_equals_a_deleted_customers_link(
    client: Client,
    repository: Repository,
    links: LinkBuilder,
    redis_client: Redis,
    signer: LinkSigner,
) -> None:
    changed = await forged_one_character(repository, links, redis_client, signer)
    deleted = await deleted_customer(repository, links, redis_client, signer)
    first, second = await client.get(changed), await client.get(deleted)
    assert (first.status_code, first.content) == (second.status_code, second.content)


async def test_withdrawal_takes_effect_on_the_very_next_request(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1003")
    assert 'value="Björn"' in (await client.get(url)).text
    await set_consent(repository, "cust-1003", ConsentAction.WITHDRAWN)
    assert "Björn" not in (await client.get(url)).text
    await set_consent(repository, "cust-1003", ConsentAction.GRANTED)
    assert 'value="Björn"' in (await client.get(url)).text


async def test_a_revoked_campaign_is_seen_on_the_next_request(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1001")
    assert "Matti" in (await client.get(url)).text  # the app has now cached the catalog
    await repository.set_campaign_state(CAMPAIGN_ID, CampaignState.REVOKED)
    assert "Matti" not in (await client.get(url)).text
    await repository.set_campaign_state(CAMPAIGN_ID, CampaignState.ACTIVE)
    assert "Matti" in (await client.get(url)).text


async def test_not_you_clears_the_form_and_kills_the_customers_links(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1001")
    card = await card_link(repository, links, "cust-1001")
    token = url.split("t=", 1)[1]
    response = await client.post(f"{FORM_PATH}/not-you", data={"t": token}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == FORM_PATH
    assert "Matti" not in (await client.get(url)).text
    assert "Aino" not in (await client.get(card)).text
    entries = await repository.audit_entries(count=5)
    assert any(e.kind == "not_you" and e.customer_id == "cust-1001" for e in entries)
    # A link minted afterwards (with the new generation) works again.
    assert "Matti" in (await client.get(await form_link(repository, links, "cust-1001"))).text


async def test_not_you_from_another_site_is_refused(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1001")
    response = await client.post(
        f"{FORM_PATH}/not-you",
        data={"t": url.split("t=", 1)[1]},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "Matti" in (await client.get(url)).text


async def test_not_you_behind_a_tls_proxy_accepts_the_public_origin(
    redis_url: str, repository: Repository, links: LinkBuilder, examples: None
) -> None:
    """The proxy speaks plain http to the service; the browser's Origin is the public URL's."""
    app = create_app(make_settings(redis_url, public_url="https://forms.example"))
    url = await form_link(repository, links, "cust-1001")
    async with AsyncTestClient(app=app, base_url=PUBLIC_URL) as proxied:
        response = await proxied.post(
            f"{FORM_PATH}/not-you",
            data={"t": url.split("t=", 1)[1]},
            headers={"Origin": "https://forms.example"},
            follow_redirects=False,
        )
    assert response.status_code == 303


async def test_not_you_with_a_bad_token_changes_nothing(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1001")
    response = await client.post(
        f"{FORM_PATH}/not-you", data={"t": "forged.token.x"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert "Matti" in (await client.get(url)).text


async def test_disclosures_are_audited_with_fields_but_never_the_token(
    client: Client, repository: Repository, links: LinkBuilder, redis_client: Redis
) -> None:
    url = await form_link(repository, links, "cust-1001")
    await client.get(url, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140"})
    (entry,) = await repository.audit_entries(count=1)
    assert entry.kind == "disclosure"
    assert entry.channel == "page"
    assert entry.customer_id == "cust-1001"
    assert entry.campaign_id == CAMPAIGN_ID
    assert "email" in entry.fields
    assert "questions" not in entry.fields
    assert entry.scanner is False
    raw = cast(
        "list[tuple[bytes, dict[bytes, bytes]]]", await redis_client.xrange("pf:{audit}:events")
    )
    token = url.split("t=", 1)[1]
    assert all(token.encode() not in fields[b"e"] for _, fields in raw)


async def test_scanner_hits_are_flagged(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1001")
    await client.get(url, headers={"User-Agent": "Mimecast URL Protect"})
    (entry,) = await repository.audit_entries(count=1)
    assert entry.scanner is True


async def test_unknown_form_is_a_404_page(client: Client) -> None:
    response = await client.get("/f/no-such-form", headers={"Accept-Language": "sv"})
    assert response.status_code == 404
    assert "Sidan hittades inte" in response.text
    assert response.headers["content-type"].startswith("text/html")


async def test_bad_requests_get_clear_errors_not_500s(client: Client) -> None:
    too_big = await client.post(
        f"{FORM_PATH}/not-you",
        content=b"t=" + b"a" * 70_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert too_big.status_code == 413
    wrong_method = await client.delete(FORM_PATH)
    assert wrong_method.status_code == 405
    odd_type = await client.post(
        f"{FORM_PATH}/not-you", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert odd_type.status_code == 415
    assert "application/x-www-form-urlencoded" in odd_type.text
    assert odd_type.headers["content-type"].startswith("text/html")
    assert "Traceback" not in too_big.text + wrong_method.text + odd_type.text


async def test_form_id_from_the_link_must_match_the_page(
    client: Client, repository: Repository, links: LinkBuilder, redis_client: Redis
) -> None:
    """A link for one form shown on another form's page discloses nothing."""
    from prefill.models import Form

    other = Form(id="other-form", title={"en": "Other"}, fields=[])
    await repository.save_catalog(forms=[other])
    token = (await form_link(repository, links, "cust-1001")).split("t=", 1)[1]
    response = await client.get(f"/f/{FORM_ID.replace('spring', 'x')}?t={token}")
    assert response.status_code == 404
    response = await client.get(f"/f/other-form?t={token}")
    assert response.status_code == 200
    assert "Matti" not in response.text
    assert (await refusals_of(repository, "cust-1001"))["page:wrong_form"] == 1


async def test_the_card_link_on_a_form_page_is_as_old_as_the_form_link(
    client: Client, repository: Repository, links: LinkBuilder, signer: LinkSigner
) -> None:
    long_ago = time.time() - 44 * 86_400  # one day left of the campaign's 45
    with mock.patch.object(time, "time", return_value=long_ago):
        url = await form_link(repository, links, "cust-1001")
    page = (await client.get(url)).text
    found = re.search(r'href="/card\?t=([^"]+)"', page)
    assert found is not None
    card = signer.verify(TokenPurpose.CARD, found.group(1))
    assert card.signed_at == int(long_ago)


async def test_stored_consent_state_is_the_state_its_history_leads_to(
    repository: Repository, examples: None
) -> None:
    from prefill.consent import current_consent

    for action in (ConsentAction.WITHDRAWN, ConsentAction.GRANTED, ConsentAction.WITHDRAWN):
        await set_consent(repository, "cust-1002", action)
    await set_consent(repository, "cust-1002", ConsentAction.GRANTED, purpose="email_marketing")
    history = await repository.consent_history("cust-1002")
    stored = (await repository.current_consents(["cust-1002"]))["cust-1002"]
    assert current_consent(history) == stored
    assert stored["personalization"].action is ConsentAction.WITHDRAWN


async def test_the_audit_stream_is_trimmed_by_age_not_by_count(
    redis_client: Redis, examples: None
) -> None:
    from prefill.models import AuditEntry, AuditKind

    repository = Repository(redis_client, PSEUDONYMS, audit_retention_days=30)
    shard = audit_shard_key(bucket_of("cust-1001"))
    await redis_client.delete(shard)
    await redis_client.xadd(shard, {"e": b"{}"}, id="1000-0")  # from 1970
    recent = AuditEntry(kind=AuditKind.DISCLOSURE, at=time.time(), customer_id="cust-1001")
    for _ in range(3):
        await repository.record_audit(recent)
    entries = cast("list[tuple[bytes, object]]", await redis_client.xrange(shard))
    assert len(entries) == 3
    assert all(entry_id != b"1000-0" for entry_id, _ in entries)


async def test_a_revocation_racing_an_import_is_not_overwritten(
    repository: Repository, redis_url: str, examples: None
) -> None:

    from prefill.imports import keep_revocations
    from prefill.models import Campaign

    campaign = Campaign(id=CAMPAIGN_ID, form_id=FORM_ID)
    calls = 0

    def reconcile_while_someone_revokes(
        campaigns: list[Campaign], stored: dict[str, Campaign]
    ) -> list[Campaign]:
        nonlocal calls
        calls += 1
        if calls == 1:  # between the import's read and its write, another process revokes
            revoked = msgspec.json.encode(
                msgspec.structs.replace(stored[CAMPAIGN_ID], state=CampaignState.REVOKED)
            )
            with sync_client(redis_url) as other:
                other.hset("pf:{catalog}:campaigns", CAMPAIGN_ID, revoked)
        return keep_revocations(campaigns, stored)

    await repository.upsert_campaigns([campaign], reconcile_while_someone_revokes)
    assert calls == 2  # the first write was refused by WATCH and reconciled again
    stored = (await repository.load_catalog()).campaigns[CAMPAIGN_ID]
    assert stored.state is CampaignState.REVOKED


async def test_a_withdrawal_racing_an_import_is_not_overwritten(
    repository: Repository, redis_url: str, examples: None
) -> None:

    from prefill.consent import import_may_record
    from prefill.models import ConsentEvent, ConsentSource

    customer = await repository.get_customer("cust-1001")
    assert customer is not None
    calls = 0

    def decide(current: dict[str, dict[str, ConsentEvent]]) -> dict[str, list[ConsentEvent]]:
        nonlocal calls
        calls += 1
        if calls == 1:  # the customer withdraws while the import is deciding
            withdrawal = ConsentEvent(
                purpose="personalization",
                action=ConsentAction.WITHDRAWN,
                at=time.time(),
                source=ConsentSource.UNSUBSCRIBE,
            )
            with sync_client(redis_url) as other:
                append_consent(other, "cust-1001", withdrawal)
        state = current["cust-1001"].get("personalization")
        grant = ConsentEvent(
            purpose="personalization",
            action=ConsentAction.GRANTED,
            at=time.time(),
            source=ConsentSource.IMPORT,
        )
        may = import_may_record(state, ConsentAction.GRANTED) or calls == 1
        return {"cust-1001": [grant]} if may else {}

    # On its first decision the import (wrongly) wants to grant; WATCH makes it decide again.
    saved = await repository.save_customers([customer], decide)
    assert calls == 2
    assert saved.consent_events == 0
    state = (await repository.current_consents(["cust-1001"]))["cust-1001"]["personalization"]
    assert state.action is ConsentAction.WITHDRAWN


async def test_the_empty_form_is_one_page_for_everyone_with_each_visitors_own_csrf_token(
    app: Litestar, examples: None, repository: Repository, links: LinkBuilder
) -> None:
    """The refused link's page is rendered once: two visitors (two cookie jars) get the same
    bytes apart from the CSRF token, and each token is the one their own cookie checks."""
    forged = (await form_link(repository, links, "cust-1001"))[:-3] + "xyz"
    pages, tokens = [], []
    for _ in range(2):
        async with AsyncTestClient(app=app, base_url=PUBLIC_URL) as visitor:
            response = await visitor.get(forged)
            assert response.status_code == 200
            token = re.search(r'name="_csrf_token" value="([^"]+)"', response.text)
            assert token is not None
            assert visitor.cookies["prefill_csrf"] == token[1]
            pages.append(response.text.replace(token[1], "TOKEN"))
            tokens.append(token[1])
    assert tokens[0] != tokens[1]
    assert pages[0] == pages[1]
    assert "\x00" not in pages[0]


async def test_a_changed_form_shows_on_the_empty_form_page_at_once(
    client: Client, repository: Repository
) -> None:
    before = await client.get(FORM_PATH, headers={"Accept-Language": "en"})
    (form,) = [f for f in (await repository.load_catalog()).forms.values() if f.id == FORM_ID]
    renamed = msgspec.structs.replace(form, title={**form.title, "en": "Autumn summit"})
    await repository.save_catalog(forms=[renamed])
    after = await client.get(FORM_PATH, headers={"Accept-Language": "en"})
    assert "Autumn summit" not in before.text
    assert "Autumn summit" in after.text
