"""The campaign funnel against a real Redis: scanners are counted apart and never as opens, a
person's open is what their page's script reports, and nothing stored names anyone."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from prefill import funnel
from prefill.admin import AdminService
from prefill.catalog import CatalogCache
from prefill.funnel import CampaignFunnel
from prefill.links import LinkBuilder
from prefill.models import AuditEntry, AuditKind
from prefill.scanners import Automation
from prefill.store import Repository
from prefill.store.base import FUNNEL_HEADS_KEPT
from prefill.store.keys import (
    FUNNEL_SHARDS,
    audit_shard_key,
    bucket_of,
    funnel_counts_key,
    funnel_salt_key,
    funnel_shard_of,
)
from prefill.tokens import LinkSigner, TokenPurpose
from tests.conftest import PSEUDONYMS, PUBLIC_URL, make_settings
from tests.helpers import (
    API_PATH,
    CAMPAIGN_ID,
    FORM_PATH,
    card_link,
    claims_for,
    form_link,
    token_of,
)

Client = AsyncTestClient[Litestar]
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"}
BEACON = BROWSER | {"Sec-Fetch-Site": "same-origin"}


async def funnel_now(repository: Repository, links: LinkBuilder) -> CampaignFunnel:
    admin = AdminService(repository, CatalogCache(repository), links, 1095)
    (figures,) = await admin.funnels(CAMPAIGN_ID)
    return figures


async def report_seen(client: Client, url: str, purpose: str = "form", **headers: str) -> None:
    """What static/seen.js posts once the page has been in view."""
    answer = await client.post(
        "/seen", data={"t": token_of(url), "purpose": purpose}, headers=BEACON | headers
    )
    assert answer.status_code == 204


async def test_the_page_script_turns_a_persons_load_into_an_open(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1001")
    page = await client.get(url, headers=BROWSER)
    assert '<script src="/static/seen.js" data-purpose="form" defer></script>' in page.text
    loaded = await funnel_now(repository, links)
    assert (loaded.loads, loaded.opens, loaded.opened) == (1, 0, 0)

    await report_seen(client, url)
    await report_seen(client, url)  # a reload: one more open, still one person
    seen = await funnel_now(repository, links)
    assert (seen.opens, seen.opened, seen.prefilled) == (2, 1, 1)
    assert sum(seen.scanner_hits.values()) == 0


async def test_scanners_are_counted_by_signal_and_never_as_opens(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1001")
    card = await card_link(repository, links, "cust-1001")
    assert (await client.head(url)).status_code == 200
    assert (await client.head(card)).status_code == 200
    await client.get(url, headers={"User-Agent": "Mimecast URL Protect"})
    await client.get(card.replace("/card?", "/card/vcard?"), headers={"User-Agent": "curl/8.5"})
    await client.get(url, headers={"User-Agent": ""})
    # A scanner that runs scripts reports like a browser does, under its own agent.
    await report_seen(client, url, **{"User-Agent": "Mozilla/5.0 (compatible; Safelinks)"})
    figures = await funnel_now(repository, links)
    assert figures.scanner_hits == {"head": 2, "agent": 4, "early": 0}
    assert (figures.loads, figures.opens, figures.opened, figures.prefilled) == (0, 0, 0, 0)


@pytest.fixture
async def early_client(redis_url: str, examples: None) -> AsyncIterator[Client]:
    """A service that counts links used within a minute of signing as scanner hits."""
    app = create_app_with_window(redis_url, 60)
    async with AsyncTestClient(app=app, base_url=PUBLIC_URL) as test_client:
        yield test_client


def create_app_with_window(redis_url: str, seconds: float) -> Litestar:
    from prefill.app import create_app

    return create_app(make_settings(redis_url, scanner_window_seconds=seconds))


async def test_a_link_used_seconds_after_it_was_signed_is_a_scanner(
    early_client: Client, repository: Repository, links: LinkBuilder, signer: LinkSigner
) -> None:
    fresh = await form_link(repository, links, "cust-1001")
    await early_client.get(fresh, headers=BROWSER)
    await report_seen(early_client, fresh)
    claims = await claims_for(repository, "cust-1003")
    # Signed ten minutes ago, as a link in an email a person opens later.
    older = signer.sign(TokenPurpose.FORM, claims, signed_at=time.time() - 600)
    older_url = f"{FORM_PATH}?t={older}"
    await early_client.get(older_url, headers=BROWSER)
    await report_seen(early_client, older_url)
    figures = await funnel_now(repository, links)
    assert figures.scanner_hits["early"] == 2
    assert (figures.loads, figures.opens, figures.opened, figures.prefilled) == (1, 1, 1, 1)


async def test_an_open_without_consent_is_an_open_but_not_prefilled(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1007")  # no personalization consent
    page = await client.get(url, headers=BROWSER)
    assert "Eero" not in page.text
    await report_seen(client, url)
    figures = await funnel_now(repository, links)
    assert (figures.opened, figures.prefilled) == (1, 0)


async def test_the_card_page_reports_its_open_too(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    card = await card_link(repository, links, "cust-1003")
    page = await client.get(card, headers=BROWSER)
    assert 'data-purpose="card"' in page.text
    await report_seen(client, card, purpose="card")
    figures = await funnel_now(repository, links)
    assert (figures.loads, figures.opened, figures.prefilled) == (1, 1, 0)


async def test_the_widgets_request_is_its_scripts_open(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1001")
    origin = {"Origin": "http://127.0.0.1:8001"}
    answer = await client.get(API_PATH, params={"t": token_of(url)}, headers=BROWSER | origin)
    assert answer.json()["prefilled"] is True
    refused = await form_link(repository, links, "cust-1007")
    await client.get(API_PATH, params={"t": token_of(refused)}, headers=BROWSER | origin)
    figures = await funnel_now(repository, links)
    assert (figures.loads, figures.opened, figures.prefilled) == (0, 2, 1)


async def submit(client: Client, url: str, changes: dict[str, str]) -> None:
    page = await client.get(url, headers=BROWSER)
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    shown = dict(
        re.findall(
            r'<input id="field-[^"]+" name="([^"]+)" type="[^"]+" value="([^"]*)"', page.text
        )
    )
    answer = await client.post(
        f"{FORM_PATH}/submit",
        data=hidden | shown | changes,
        headers=BROWSER,
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


async def test_submissions_count_the_prefilled_fields_people_corrected(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1001")
    await submit(client, url, {"last_name": "Korhonen-Uusi", "diet": "vegetarian"})
    await submit(client, url, {"questions": "Onko pysäköintiä?"})  # same person, nothing corrected
    figures = await funnel_now(repository, links)
    assert (figures.submitted, figures.submissions) == (1, 2)
    assert figures.corrected_fields == {"last_name": 1}


async def test_unsubscribing_twice_counts_once(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    unsubscribe = links.unsubscribe_url(await claims_for(repository, "cust-1001"))
    path = unsubscribe.removeprefix(PUBLIC_URL)
    for _ in range(2):
        answer = await client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code == 200
    assert (await funnel_now(repository, links)).unsubscribed == 1


async def test_reports_with_bad_tokens_or_from_other_sites_count_nothing(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1001")
    forged = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    await report_seen(client, forged)
    await report_seen(client, "/f/x?t=")
    cross_site = await client.post(
        "/seen", data={"t": token_of(url)}, headers=BROWSER | {"Sec-Fetch-Site": "cross-site"}
    )
    assert cross_site.status_code == 403
    not_a_form = await client.post("/seen", json={"t": token_of(url)}, headers=BEACON)
    assert not_a_form.status_code == 415
    figures = await funnel_now(repository, links)
    assert (figures.opens, figures.loads, sum(figures.scanner_hits.values())) == (0, 0, 0)


async def test_people_are_counted_salted_and_the_salt_goes_with_the_campaigns_links(
    client: Client, repository: Repository, links: LinkBuilder, redis_client: Redis
) -> None:
    """Only counters and salted HyperLogLogs are kept. With the campaign's salt, someone with
    the service's keys could test one person; without it (it expires with the campaign's
    links), nobody can, and the same person is simply counted anew."""
    url = await form_link(repository, links, "cust-1001")
    await report_seen(client, url)
    # In the person's shard (keys.py).
    prefix = f"pf:{{b:{funnel_shard_of('cust-1001')}}}:funnel:spring-summit-2027-invite"
    assert sorted([key async for key in redis_client.scan_iter(match="pf:*:funnel:*")]) == [
        f"{prefix}:counts".encode(),
        f"{prefix}:people:opened".encode(),
        f"{prefix}:people:prefilled".encode(),
        f"{prefix}:salt".encode(),
    ]
    counts = await redis_client.hgetall(f"{prefix}:counts")
    assert set(counts) == {b"opened", b"prefilled"}
    lifetime = 45 * 86_400  # the example campaign's link lifetime
    assert lifetime - 5 < await redis_client.ttl(f"{prefix}:salt") <= lifetime
    assert await redis_client.ttl(f"{prefix}:people:opened") > lifetime

    pseudonym = PSEUDONYMS.of("cust-1001")
    salt = await redis_client.get(f"{prefix}:salt")
    assert isinstance(salt, bytes)
    salted = hashlib.sha1(salt + pseudonym.encode()).hexdigest()  # noqa: S324 (as Redis does)
    probe = f"{prefix}:probe"  # in the same slot, so COPY works on a cluster too
    await redis_client.copy(f"{prefix}:people:opened", probe)
    assert await redis_client.pfadd(probe, salted) == 0  # counted: with the salt, testable
    assert await redis_client.pfadd(probe, pseudonym) == 1  # the pseudonym alone: not there

    await redis_client.delete(f"{prefix}:salt")  # as when it expires
    await report_seen(client, url)
    assert (await funnel_now(repository, links)).opened == 2


async def test_a_server_that_lost_its_scripts_records_the_disclosure_once(
    repository: Repository, links: LinkBuilder, redis_client: Redis, examples: None
) -> None:
    """The audit script and the funnel's counters share a round trip; a server restarted
    without the script gets it loaded, and neither write happens twice."""
    shard = audit_shard_key(bucket_of("cust-1001"))
    before = await redis_client.xlen(shard)
    await redis_client.script_flush()
    entry = AuditEntry(kind=AuditKind.DISCLOSURE, at=time.time(), customer_id="cust-1001")
    person = funnel.Person("cust-1001", 45 * 86_400)
    hit = funnel.hit(CAMPAIGN_ID, person, None, script_ran=True, prefilled=True)
    await repository.record_audit(entry, funnel=hit)
    assert await redis_client.xlen(shard) == before + 1
    figures = await funnel_now(repository, links)
    assert (figures.opens, figures.prefilled) == (1, 1)


async def test_links_outside_their_campaigns_life_are_events_not_people(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    erased = await form_link(repository, links, "cust-1003")
    assert await repository.erase_customer("cust-1003") is not None
    await report_seen(client, erased)
    figures = await funnel_now(repository, links)
    assert (figures.opens, figures.opened) == (1, 0)
    # A site that may not embed the form adds nothing at all.
    url = await form_link(repository, links, "cust-1001")
    await client.get(
        API_PATH, params={"t": token_of(url)}, headers=BROWSER | {"Origin": "https://evil.example"}
    )
    assert await funnel_now(repository, links) == figures


async def test_a_funnel_that_cannot_count_does_not_fail_the_request(
    client: Client, repository: Repository, links: LinkBuilder, redis_client: Redis
) -> None:
    shard = funnel_shard_of("cust-1001")
    await redis_client.set(
        f"pf:{{b:{shard}}}:funnel:spring-summit-2027-invite:counts", "not a hash"
    )
    page = await client.get(await form_link(repository, links, "cust-1001"), headers=BROWSER)
    assert page.status_code == 200
    assert 'value="Matti"' in page.text
    refused = await client.get(await form_link(repository, links, "cust-1007"), headers=BROWSER)
    assert refused.status_code == 200
    (entry, *_) = await repository.audit_entries(count=1)
    assert (entry.kind, entry.customer_id) == ("disclosure", "cust-1001")


async def test_the_shards_of_a_funnel_add_up(
    client: Client, repository: Repository, links: LinkBuilder, redis_client: Redis
) -> None:
    """People in different shards are counted there; the read sums them."""
    customers = ["cust-1001", "cust-1002", "cust-1003"]
    assert len({funnel_shard_of(c) for c in customers}) == 3
    for customer_id in customers:
        await report_seen(client, await form_link(repository, links, customer_id))
    await report_seen(client, await form_link(repository, links, "cust-1001"))  # once more
    figures = await funnel_now(repository, links)
    assert figures.opened == 3
    shards = [key async for key in redis_client.scan_iter(match="pf:*:funnel:*:people:opened")]
    assert len(shards) == 3


async def test_counts_of_no_one_go_to_each_shard_in_turn(
    repository: Repository, redis_client: Redis
) -> None:
    """Scanner hits name no one: they spread over the shards, one shard after the other."""
    hit = funnel.hit(
        CAMPAIGN_ID,
        funnel.Person("", 0, False),
        Automation.AGENT,
        script_ran=False,
        prefilled=False,
    )
    for _ in range(2 * FUNNEL_SHARDS):
        await repository.count_funnel(hit)
    for shard in range(FUNNEL_SHARDS):
        counts = await redis_client.hgetall(funnel_counts_key(CAMPAIGN_ID, shard))
        assert counts == {b"scanner:agent": b"2"}
        assert not await redis_client.exists(funnel_salt_key(CAMPAIGN_ID, shard))


async def test_the_command_heads_kept_name_no_one_and_are_bounded(
    repository: Repository, redis_client: Redis
) -> None:
    """A funnel command's head is kept per campaign, shard, stages and counters; the salt and
    the person's pseudonym are made anew each time, and never kept."""
    person = funnel.Person("cust-1001", 45 * 86_400)
    for _ in range(2):
        await repository.count_funnel(
            funnel.hit(CAMPAIGN_ID, person, None, script_ran=True, prefilled=True)
        )
    kept = repr(repository._funnel_heads)
    assert CAMPAIGN_ID in kept
    assert "cust-1001" not in kept
    assert PSEUDONYMS.of("cust-1001") not in kept
    salt = await redis_client.get(funnel_salt_key(CAMPAIGN_ID, funnel_shard_of("cust-1001")))
    assert isinstance(salt, bytes)
    assert salt.decode() not in kept
    for i in range(FUNNEL_HEADS_KEPT + 10):
        repository._funnel_call(funnel.unsubscribed(f"campaign-{i}"))
    assert 0 < len(repository._funnel_heads) <= FUNNEL_HEADS_KEPT
