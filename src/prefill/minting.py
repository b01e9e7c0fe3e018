"""Minting a campaign's personal links in bulk: a CSV of customer ids in, the same CSV with URL
columns out, ready for an email tool's merge fields. Streams in batches of one pipeline each."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterable, Iterator
from typing import TextIO

import msgspec

from prefill.imports import Problem
from prefill.links import LinkBuilder
from prefill.models import Campaign, CampaignState, Customer
from prefill.repository import Repository
from prefill.tokens import LinkClaims

BATCH_SIZE = 500
URL_COLUMNS = (
    "form_url",
    "card_url",
    "vcard_url",
    "unsubscribe_url",
    "list_unsubscribe",
    "list_unsubscribe_post",
)
"""The link columns, and the two header values an email tool puts on the message (RFC 8058)."""
ID_COLUMNS = ("customer_id", "id")


class MintError(Exception):
    """The campaign or the input cannot be minted at all; the message says why."""


class MintReport(msgspec.Struct):
    minted: int = 0
    skipped: list[Problem] = msgspec.field(default_factory=list)


def personal_links(links: LinkBuilder, customer: Customer, campaign: Campaign) -> dict[str, str]:
    """The URL columns for one customer of a campaign."""
    claims = LinkClaims(customer.id, campaign.id, customer.generation)
    unsubscribe_url = links.unsubscribe_url(claims)
    return {
        "form_url": links.form_url(claims, campaign.form_id),
        "card_url": links.card_url(claims),
        "vcard_url": links.vcard_url(claims),
        "unsubscribe_url": unsubscribe_url,
        "list_unsubscribe": f"<{unsubscribe_url}>",
        "list_unsubscribe_post": "List-Unsubscribe=One-Click",
    }


async def require_active_campaign(repository: Repository, campaign_id: str) -> Campaign:
    campaign = (await repository.load_catalog()).campaigns.get(campaign_id)
    if campaign is None:
        raise MintError(f"no campaign {campaign_id!r}")
    if campaign.state is not CampaignState.ACTIVE:
        raise MintError(
            f"campaign {campaign_id!r} is {campaign.state.value}; its links would not open"
        )
    return campaign


def _batches(
    rows: Iterable[tuple[int, dict[str, str]]],
) -> Iterator[list[tuple[int, dict[str, str]]]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, BATCH_SIZE)):
        yield batch


async def mint_csv(
    repository: Repository,
    links: LinkBuilder,
    campaign_id: str,
    source: TextIO,
    target: TextIO,
) -> MintReport:
    """Copy `source` to `target` with the URL columns added; unknown ids are skipped and
    reported by line number."""
    campaign = await require_active_campaign(repository, campaign_id)
    reader = csv.DictReader(source)
    columns = list(reader.fieldnames or [])
    id_column = next((c for c in ID_COLUMNS if c in columns), None)
    if id_column is None:
        raise MintError(f"the input needs a column named {' or '.join(ID_COLUMNS)}")
    writer = csv.DictWriter(
        target,
        fieldnames=columns + [c for c in URL_COLUMNS if c not in columns],
        lineterminator="\n",
    )
    writer.writeheader()
    report = MintReport()
    numbered = ((reader.line_num, row) for row in reader)
    for batch in _batches(numbered):
        customers = await repository.get_customers(row[id_column] or "" for _, row in batch)
        for line, row in batch:
            if None in row:  # DictReader keeps surplus values under the key None.
                report.skipped.append(Problem(line, "more values than columns"))
                continue
            customer = customers.get(row[id_column] or "")
            if customer is None:
                report.skipped.append(Problem(line, f"unknown customer id {row[id_column]!r}"))
                continue
            row.update(personal_links(links, customer, campaign))
            writer.writerow(row)
            report.minted += 1
    return report
