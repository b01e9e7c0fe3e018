"""One-click unsubscribe (RFC 8058): GET confirms and changes nothing, POST withdraws once."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from prefill.links import LinkBuilder
from prefill.models import ConsentAction, ConsentSource
from prefill.store import Repository
from tests.helpers import claims_for, relative

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


async def unsubscribe_link(repository: Repository, links: LinkBuilder, customer_id: str) -> str:
    return relative(links.unsubscribe_url(await claims_for(repository, customer_id)))


async def test_a_get_shows_a_confirmation_and_changes_nothing(
    client: AsyncTestClient[Litestar], repository: Repository, links: LinkBuilder
) -> None:
    url = await unsubscribe_link(repository, links, "cust-1001")
    before = await repository.consent_history("cust-1001")
    for agent in ("Mozilla/5.0", "Barracuda Sentinel (EE)"):
        page = await client.get(url, headers={"User-Agent": agent, "Accept-Language": "fi"})
        assert page.status_code == 200
        assert "Perutaanko" in page.text
        assert 'name="List-Unsubscribe" value="One-Click"' in page.text
        assert "Matti" not in page.text
    head = await client.head(url)
    assert (head.status_code, head.content) == (200, b"")
    assert await repository.consent_history("cust-1001") == before


async def test_a_one_click_post_withdraws_email_marketing_once(
    client: AsyncTestClient[Litestar], repository: Repository, links: LinkBuilder
) -> None:
    url = await unsubscribe_link(repository, links, "cust-1001")
    before = len(await repository.consent_history("cust-1001"))
    for _ in range(2):  # Mail clients retry; the second post must change nothing.
        answer = await client.post(url, data=ONE_CLICK, headers={"User-Agent": "GoogleMail"})
        assert answer.status_code == 200
        assert "set-cookie" not in answer.headers
    history = await repository.consent_history("cust-1001")
    assert len(history) == before + 1
    event = history[-1]
    assert (event.purpose, event.action, event.source) == (
        "email_marketing",
        ConsentAction.WITHDRAWN,
        ConsentSource.UNSUBSCRIBE,
    )
    assert event.user_agent == "GoogleMail"
    # Prefill rests on another purpose, and stays.
    state = await repository.current_consents(["cust-1001"])
    assert state["cust-1001"]["personalization"].action is ConsentAction.GRANTED


async def test_multipart_one_click_posts_work_too(
    client: AsyncTestClient[Litestar], repository: Repository, links: LinkBuilder
) -> None:
    url = await unsubscribe_link(repository, links, "cust-1003")
    answer = await client.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert answer.status_code == 200
    state = await repository.current_consents(["cust-1003"])
    assert state["cust-1003"]["email_marketing"].action is ConsentAction.WITHDRAWN


async def test_bad_unsubscribe_requests_get_clear_errors(
    client: AsyncTestClient[Litestar],
    repository: Repository,
    links: LinkBuilder,
) -> None:
    url = await unsubscribe_link(repository, links, "cust-1001")
    before = await repository.consent_history("cust-1001")
    forged = await client.post("/u?t=forged.token", data=ONE_CLICK)
    assert forged.status_code == 400
    assert "cannot be used" in forged.text
    assert (await client.get("/u?t=forged.token")).status_code == 400
    no_body = await client.post(url, data={"something": "else"})
    assert no_body.status_code == 400
    assert "List-Unsubscribe=One-Click" in no_body.text
    # A form link is no unsubscribe link (another salt).
    form_url = links.form_url(await claims_for(repository, "cust-1001"), "spring-summit-2027")
    wrong_purpose = form_url.split("t=")[1]
    assert (await client.post(f"/u?t={wrong_purpose}", data=ONE_CLICK)).status_code == 400
    assert await repository.consent_history("cust-1001") == before


async def test_the_page_speaks_the_customers_language_not_the_browsers(
    client: AsyncTestClient[Litestar], repository: Repository, links: LinkBuilder
) -> None:
    url = await unsubscribe_link(repository, links, "cust-1001")  # A Finnish customer.
    english = {"Accept-Language": "en-GB,en;q=0.9"}
    assert "Perutaanko" in (await client.get(url, headers=english)).text
    done = await client.post(url, data=ONE_CLICK, headers=english)
    assert 'lang="fi"' in done.text
    # A bad link names nobody: the browser's language it is.
    assert "Perutaanko" not in (await client.get("/u?t=junk", headers=english)).text
