"""`prefill mint` against a real Redis: a CSV an email tool can merge, and a report of who was
skipped and why."""

from __future__ import annotations

import asyncio
import csv
import gc
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from redis.asyncio import Redis

from prefill.admin import AdminService
from prefill.catalog import CatalogCache
from prefill.links import LinkBuilder
from prefill.minting import Minter, MintError, Wanted
from prefill.models import Actor, CampaignState, Customer
from prefill.store import Repository, StoreUnavailable
from prefill.store.keys import customer_key
from prefill.tokens import LinkClaims, LinkSigner, TokenPurpose, check_claims
from tests.helpers import CAMPAIGN_ID, run
from tests.integration.test_bulk_import import slow_first_call

EMAIL_CONSENTING = {"cust-1001", "cust-1003", "cust-1005", "cust-1007"}
"""The example customers who granted email_marketing (cust-1004 withdrew it)."""


def rows_of(out: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(out)))


def test_a_list_is_minted_with_merge_fields_and_every_skip_has_its_reason(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert run(env, "import", "examples")[0] == 0
    assert run(env, "erase", "cust-1005", "--yes")[0] == 0
    ids = ["cust-1001", "cust-1002", "nobody", "cust-1005", "cust-1001", "cust-1003", "bad id!"]
    source = tmp_path / "list.csv"
    # The list's own email column is stale: the stored address is the one links go to.
    source.write_text(
        "customer_id,email,segment\n" + "".join(f"{i},old@x.example,s\n" for i in ids),
        encoding="utf-8",
    )
    skipped = tmp_path / "skipped.csv"
    code, out, err = run(
        env, "mint", "--campaign", CAMPAIGN_ID, "--input", str(source), "--skipped", str(skipped)
    )
    assert code == 0, err
    rows = rows_of(out)
    assert [r["customer_id"] for r in rows] == ["cust-1001", "cust-1003"]
    assert list(rows[0]) == [
        "customer_id",
        "email",
        "segment",
        "first_name",
        "last_name",
        "locale",
        "form_url",
        "card_url",
        "vcard_url",
        "unsubscribe_url",
        "list_unsubscribe",
        "list_unsubscribe_post",
    ]
    assert (rows[0]["email"], rows[0]["first_name"], rows[1]["locale"]) == (
        "matti.korhonen@lampo.example",
        "Matti",
        "sv",
    )
    assert rows[0]["segment"] == "s"
    assert rows[0]["list_unsubscribe"] == f"<{rows[0]['unsubscribe_url']}>"
    assert "minted 2 link set(s) for spring-summit-2027-invite, skipped 5" in err
    for count_and_reason in (
        "1 no consent",
        "2 unknown customer id",
        "1 erased",
        "1 duplicate",
    ):
        assert f"  {count_and_reason}\n" in err
    with skipped.open(encoding="utf-8") as handle:
        listed = {(r["line"], r["customer_id"], r["reason"]) for r in csv.DictReader(handle)}
    assert listed == {
        ("3", "cust-1002", "no email_marketing consent"),
        ("4", "nobody", "unknown customer id"),
        ("5", "cust-1005", "erased"),
        ("6", "cust-1001", "duplicate of line 2"),
        ("8", "", "unknown customer id"),  # a cell that is no id is not echoed
    }


def test_the_consenting_segment_is_everyone_with_the_purpose(env: dict[str, str]) -> None:
    assert run(env, "import", "examples")[0] == 0
    code, out, err = run(env, "mint", "--campaign", CAMPAIGN_ID, "--all-consenting")
    assert code == 0, err
    assert {r["customer_id"] for r in rows_of(out)} == EMAIL_CONSENTING
    assert "minted 4 link set(s) for spring-summit-2027-invite, skipped 0" in err
    assert "(3 customer(s) have not consented to email_marketing)" in err  # not the segment's
    code, out, err = run(
        env,
        "mint",
        "--campaign",
        CAMPAIGN_ID,
        "--all-consenting",
        "--consent-purpose",
        "personalization",
    )
    assert code == 0, err
    assert len(rows_of(out)) == 6  # all but Eero
    code, _, err = run(env, "mint", "--campaign", CAMPAIGN_ID, "--all-consenting", "--input", "-")
    assert code == 2
    assert "not both" in err


def test_a_mint_leaves_the_garbage_collector_as_it_found_it(env: dict[str, str]) -> None:
    """A mint tunes the collector for its run (cli_support.collector_for_bulk); run in-process,
    as here, the process keeps the collector it had."""
    assert run(env, "import", "examples")[0] == 0
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    code, out, err = run(env, "mint", "--campaign", CAMPAIGN_ID, "--all-consenting")
    assert code == 0, err
    assert {r["customer_id"] for r in rows_of(out)} == EMAIL_CONSENTING
    assert (gc.get_threshold(), gc.get_freeze_count()) == (threshold, frozen)


async def test_minting_counts_the_issued_links_in_the_funnel(
    examples: None, repository: Repository, links: LinkBuilder
) -> None:
    admin = AdminService(repository, CatalogCache(repository), links, 1095)
    result = await admin.mint(CAMPAIGN_ID, ["cust-1001", "cust-1002", "cust-1003"], Actor("t"))
    assert [link.customer_id for link in result.links] == ["cust-1001", "cust-1003"]
    assert [(s.customer_id, s.reason) for s in result.skipped] == [
        ("cust-1002", "no email_marketing consent")
    ]
    (figures,) = await admin.funnels(CAMPAIGN_ID)
    assert figures.issued == 2
    (entry, *_) = await repository.audit_entries(count=1)
    assert (entry.action, entry.target) == ("links.mint", f"campaign:{CAMPAIGN_ID}")


async def test_batches_in_flight_report_in_the_input_s_order_and_see_earlier_repeats(
    examples: None,
    repository: Repository,
    links: LinkBuilder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch a customer: several are read and signed at once, yet each is reported after
    the one before it, and a repeat is found in a batch still being checked. The first
    batch's repeat check and read are slowed, so that later batches would overtake them,
    on one Redis too, were the waits for them missing."""
    monkeypatch.setattr(repository, "first_seen", slow_first_call(repository.first_seen))
    monkeypatch.setattr(repository, "mint_states", slow_first_call(repository.mint_states))
    campaign = (await repository.load_catalog()).campaigns[CAMPAIGN_ID]
    ids = ["cust-1007", "cust-1001", "cust-1007", "cust-1002", "cust-1001", "cust-1005"]
    said: list[tuple[int, str, str]] = []
    batches: list[int] = []
    report = await Minter(repository, links, campaign, "test", batch_size=1).mint(
        [Wanted(line, cid) for line, cid in enumerate(ids, 2)],
        write=lambda wanted, customer, _: said.append((wanted.line, customer.id, "minted")),
        on_skip=lambda line, customer_id, reason: said.append((line, customer_id, reason)),
        on_batch=lambda rows, _: batches.append(rows),
    )
    assert said == [
        (2, "cust-1007", "minted"),
        (3, "cust-1001", "minted"),
        (4, "cust-1007", "duplicate of line 2"),
        (5, "cust-1002", "no email_marketing consent"),
        (6, "cust-1001", "duplicate of line 3"),
        (7, "cust-1005", "minted"),
    ]
    assert batches == [1, 2, 3, 4, 5, 6]
    assert (report.minted, report.skipped) == (3, {"duplicate": 2, "no consent": 1})
    (figures,) = await AdminService(repository, CatalogCache(repository), links, 1095).funnels(
        CAMPAIGN_ID
    )
    assert figures.issued == 3


async def test_a_failed_read_leaves_no_repeat_check_writing_after_the_mint(
    examples: None,
    repository: Repository,
    redis_client: Redis,
    links: LinkBuilder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch's catalog read fails while its repeat check is still on its way: the mint
    fails only once the check is over, then removes the run's ids; none is written after."""

    async def unreadable(*_: object) -> None:
        raise StoreUnavailable("catalog")

    monkeypatch.setattr(CatalogCache, "current", unreadable)
    monkeypatch.setattr(repository, "first_seen", slow_first_call(repository.first_seen, 0.2))
    campaign = (await repository.load_catalog()).campaigns[CAMPAIGN_ID]
    minter = Minter(repository, links, campaign, "test")
    with pytest.raises(StoreUnavailable):
        await minter.mint([Wanted(2, "cust-1001")], write=lambda *_: None)
    await asyncio.sleep(0.3)  # past the held check, had it been left running
    assert [key async for key in redis_client.scan_iter(match="*:seen")] == []


async def test_a_campaign_revoked_while_minting_stops_the_mint(
    examples: None, repository: Repository, links: LinkBuilder
) -> None:
    campaign = (await repository.load_catalog()).campaigns[CAMPAIGN_ID]
    minter = Minter(repository, links, campaign, "test", batch_size=1)
    written: list[str] = []
    first_written = asyncio.Event()

    def write(customer: Customer) -> None:
        written.append(customer.id)
        first_written.set()

    async def wanted() -> AsyncIterator[Wanted]:
        yield Wanted(1, "cust-1001")
        # Revoked once the first link set is out: the mint reads ahead of what it writes.
        await first_written.wait()
        await repository.set_campaign_state(CAMPAIGN_ID, CampaignState.REVOKED)
        yield Wanted(2, "cust-1003")

    with pytest.raises(MintError, match="was revoked while minting; 1 link set"):
        await minter.mint(wanted(), lambda _, customer, __: write(customer))
    assert written == ["cust-1001"]


async def test_a_revocation_stops_the_mint_at_the_next_batch_despite_reading_ahead(
    examples: None, repository: Repository, links: LinkBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The input is all there: the batches after the first are read (catalog included) and
    signed while the first is counted. A revocation made then still stops the mint there."""
    campaign = (await repository.load_catalog()).campaigns[CAMPAIGN_ID]
    count_funnel = repository.count_funnel
    counted = 0

    async def revoked_while_the_first_is_counted(update: Any) -> None:
        nonlocal counted
        counted += 1
        if counted == 1:
            await repository.set_campaign_state(CAMPAIGN_ID, CampaignState.REVOKED)
        await count_funnel(update)

    monkeypatch.setattr(repository, "count_funnel", revoked_while_the_first_is_counted)
    written: list[str] = []
    ids = ["cust-1001", "cust-1003", "cust-1005"]
    with pytest.raises(MintError, match="was revoked while minting; 1 link set"):
        await Minter(repository, links, campaign, "test", batch_size=1).mint(
            [Wanted(line, cid) for line, cid in enumerate(ids, 2)],
            lambda _, customer, __: written.append(customer.id),
        )
    assert written == ["cust-1001"]


async def test_a_mint_validates_the_stored_fields_it_uses_and_its_links_verify(
    examples: None,
    repository: Repository,
    links: LinkBuilder,
    signer: LinkSigner,
    redis_client: Redis,
) -> None:
    await redis_client.hset(customer_key("cust-1001"), "e", "not an email")
    await redis_client.hset(customer_key("cust-1003"), "L", "de")
    await redis_client.delete(customer_key("cust-1005"))
    await redis_client.set(customer_key("cust-1005"), "a string")
    # A field the mint does not use is not its to judge: the links are made.
    await redis_client.hset(customer_key("cust-1007"), "p", "\x07")
    campaign = (await repository.load_catalog()).campaigns[CAMPAIGN_ID]
    minted: dict[str, tuple[Customer, dict[str, str]]] = {}
    skipped: list[tuple[str, str]] = []
    wanted = [
        Wanted(n, cid)
        for n, cid in enumerate(
            ["cust-1001", "cust-1003", "cust-1005", "cust-1007", "cust-1004"], 1
        )
    ]
    report = await Minter(repository, links, campaign, "test").mint(
        wanted,
        write=lambda _, customer, urls: minted.__setitem__(customer.id, (customer, urls)),
        on_skip=lambda _, customer_id, reason: skipped.append((customer_id, reason)),
    )
    assert skipped == [
        ("cust-1001", "stored record unreadable"),
        ("cust-1003", "stored record unreadable"),
        ("cust-1005", "stored record unreadable"),
        ("cust-1004", "no email_marketing consent"),
    ]
    assert list(minted) == ["cust-1007"]
    assert report.minted == 1
    customer, urls = minted["cust-1007"]
    for purpose, url in (
        (TokenPurpose.FORM, urls["form_url"]),
        (TokenPurpose.CARD, urls["card_url"]),
        (TokenPurpose.CARD, urls["vcard_url"]),
        (TokenPurpose.UNSUBSCRIBE, urls["unsubscribe_url"]),
    ):
        link = signer.verify(purpose, parse_qs(urlsplit(url).query)["t"][0])
        check_claims(link, campaign=campaign, customer=customer, form_id=None)
        assert link.claims == LinkClaims("cust-1007", CAMPAIGN_ID, 0)
