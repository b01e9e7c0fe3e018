"""The consent state on the customer's own form page: a consent in force is said in words with
a way to withdraw it, never a ticked box; a submit records only what the person did now."""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from prefill.i18n import long_date
from prefill.links import LinkBuilder
from prefill.models import AuditKind, Channel, ConsentAction, ConsentSource
from prefill.store import Repository
from tests.helpers import (
    API_PATH,
    FORM_PATH,
    form_as_shown,
    form_link,
    registration_form,
    token_of,
)
from tests.integration.test_submit import feed, open_form

Client = AsyncTestClient[Litestar]
WITHDRAW = f"{FORM_PATH}/withdraw"
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


async def history_length(repository: Repository, customer_id: str) -> int:
    return len(await repository.consent_history(customer_id))


async def granted_at(repository: Repository, customer_id: str, purpose: str) -> float:
    (state,) = (await repository.current_consents([customer_id])).values()
    return state[purpose].at


async def test_consents_in_force_are_said_with_their_date_and_no_box(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    page = (await client.get(await form_link(repository, links, "cust-1001"))).text
    form = registration_form(page)
    assert 'type="checkbox"' not in form
    for purpose in ("email_marketing", "personalization"):
        day = long_date(await granted_at(repository, "cust-1001", purpose), "fi")
        assert re.match(r"\d{1,2}\. \w+ \d{4}$", day)
        block = form.split(f'id="consent-in-force-{purpose}"', 1)[1].split("</div>", 1)[0]
        assert f"Voimassa: annoit tämän suostumuksen {day}." in block
        assert f'form="withdraw-{purpose}"' in block
        assert "Peru tämä suostumus" in block
        withdraw = page.split(f'<form id="withdraw-{purpose}"', 1)[1].split("</form>", 1)[0]
        assert 'name="_csrf_token"' in withdraw
        assert f'name="purpose" value="{purpose}"' in withdraw


async def test_a_withdrawn_consent_is_an_empty_box_that_says_so(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    page = (await client.get(await form_link(repository, links, "cust-1004"))).text
    day = long_date(await granted_at(repository, "cust-1004", "email_marketing"), "sv")
    box = re.search(r'<input id="consent-email_marketing"[^>]*>', page)
    assert box is not None
    assert " checked" not in box[0]
    assert 'aria-describedby="consent-state-email_marketing"' in box[0]
    assert f"Du återkallade det här samtycket {day}." in page
    assert "Gäller: du gav det här samtycket" in page  # personalization, in force


async def test_a_submit_records_no_consent_the_person_did_not_give_now(
    client: Client, repository: Repository, links: LinkBuilder, redis_client: Redis
) -> None:
    for customer_id in ("cust-1001", "cust-1004"):
        before = await history_length(repository, customer_id)
        url = await form_link(repository, links, customer_id)
        shown = form_as_shown((await client.get(url)).text)
        assert not any(name.startswith("consent_") for name in shown)
        answer = await client.post(
            f"{FORM_PATH}/submit", data=shown, headers=SAME_ORIGIN, follow_redirects=False
        )
        assert answer.status_code == 303
        assert await history_length(repository, customer_id) == before
    # A page from before a grant (or a crafted post) ticking a consent in force: no new event.
    hidden = await open_form(client, await form_link(repository, links, "cust-1001"))
    posted = hidden | {
        "first_name": "Matti",
        "last_name": "Korhonen",
        "email": "matti.korhonen@lampo.example",
        "consent_email_marketing": "em-2026-01",
    }
    answer = await client.post(f"{FORM_PATH}/submit", data=posted, follow_redirects=False)
    assert answer.status_code == 303
    assert await history_length(repository, "cust-1001") == 2
    assert [e.kind.value for e in await feed(redis_client)] == ["submission"] * 3


async def test_withdrawing_on_the_page_records_it_and_shows_the_page_again(
    client: Client, repository: Repository, links: LinkBuilder, redis_client: Redis
) -> None:
    url = await form_link(repository, links, "cust-1003")
    hidden = await open_form(client, url)
    posted = {"_csrf_token": hidden["_csrf_token"], "t": hidden["t"], "purpose": "email_marketing"}
    answer = await client.post(WITHDRAW, data=posted, headers=SAME_ORIGIN, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == url
    (last,) = (await repository.consent_history("cust-1003"))[-1:]
    assert (last.purpose, last.action, last.source) == (
        "email_marketing",
        ConsentAction.WITHDRAWN,
        ConsentSource.FORM,
    )
    assert last.notice_version == "em-2026-01"
    assert last.actor == "the customer, by form link"
    assert [e.kind.value for e in await feed(redis_client)] == ["consent"]

    page = (await client.get(url)).text
    day = long_date(last.at, "sv")
    assert f"Du återkallade det här samtycket {day}." in page
    assert re.search(r'<input id="consent-email_marketing"[^>]*type="checkbox"', page)
    # Withdrawing again records nothing.
    again = await client.post(WITHDRAW, data=posted, headers=SAME_ORIGIN, follow_redirects=False)
    assert again.status_code == 303
    assert len(await feed(redis_client)) == 1


async def test_a_withdrawal_without_the_pages_csrf_token_is_refused(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1003")
    hidden = await open_form(client, url)
    before = await history_length(repository, "cust-1003")
    for token in ("", "0" * len(hidden["_csrf_token"])):
        posted = {"_csrf_token": token, "t": hidden["t"], "purpose": "email_marketing"}
        answer = await client.post(WITHDRAW, data=posted, headers=SAME_ORIGIN)
        assert answer.status_code == 403
    assert await history_length(repository, "cust-1003") == before


async def test_withdrawing_the_consent_to_prefill_empties_the_form_at_once(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1005")
    hidden = await open_form(client, url)
    posted = {"_csrf_token": hidden["_csrf_token"], "t": hidden["t"], "purpose": "personalization"}
    page = await client.post(WITHDRAW, data=posted, headers=SAME_ORIGIN)
    assert page.status_code == 200
    assert "Kadri" not in page.text
    assert "Voimassa" not in page.text
    assert "in force" not in page.text.lower()
    assert 'class="not-you"' not in page.text


async def test_a_withdrawal_needs_an_admitted_link_a_purpose_of_the_form_and_our_own_page(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    hidden = await open_form(client, await form_link(repository, links, "cust-1001"))
    csrf = hidden["_csrf_token"]
    before = await history_length(repository, "cust-1001")
    forged = {"_csrf_token": csrf, "t": hidden["t"][:-2] + "xx", "purpose": "email_marketing"}
    answer = await client.post(WITHDRAW, data=forged, headers=SAME_ORIGIN, follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, FORM_PATH)
    unknown = {"_csrf_token": csrf, "t": hidden["t"], "purpose": "telepathy"}
    answer = await client.post(WITHDRAW, data=unknown, headers=SAME_ORIGIN)
    assert answer.status_code == 400
    assert "This form asks for no such consent." in answer.text
    real = {"_csrf_token": csrf, "t": hidden["t"], "purpose": "email_marketing"}
    cross = await client.post(WITHDRAW, data=real, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    no_csrf = await client.post(WITHDRAW, data=real | {"_csrf_token": "x"}, headers=SAME_ORIGIN)
    assert no_csrf.status_code == 403
    assert await history_length(repository, "cust-1001") == before


async def test_the_consent_state_goes_only_to_the_customers_own_page(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await form_link(repository, links, "cust-1001")
    await client.get(url)
    widget = await client.get(
        API_PATH, params={"t": token_of(url)}, headers={"Origin": "http://127.0.0.1:8001"}
    )
    assert widget.json()["prefilled"] is True
    assert "consent" not in widget.text
    generic = (await client.get(FORM_PATH)).text
    assert "Voimassa" not in generic
    assert "In force" not in generic
    disclosed = {
        e.channel: e.fields
        for e in await repository.audit_entries(10, "cust-1001", None, None)
        if e.kind is AuditKind.DISCLOSURE
    }
    assert set(disclosed) == {Channel.PAGE, Channel.WIDGET}
    assert {"consent:email_marketing", "consent:personalization"} <= set(disclosed[Channel.PAGE])
    assert not any(f.startswith("consent:") for f in disclosed[Channel.WIDGET])
