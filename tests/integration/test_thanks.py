"""The thank-you page and the event's calendar file, against the real service and Redis.

Who submitted travels in a short-lived signed cookie, never in the page's address: the page
shows the contact person again only to that browser, and only while the link and consent that
would show it on the form still hold."""

from __future__ import annotations

import re
import time
from http.cookies import SimpleCookie
from urllib.parse import unquote

import icalendar
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from prefill.admin import AdminService
from prefill.catalog import CatalogCache
from prefill.links import LinkBuilder
from prefill.models import ConsentAction
from prefill.store import Repository
from prefill.tokens import LinkClaims, LinkSigner, TokenPurpose
from prefill.web.submit import THANKS_COOKIE
from tests.helpers import (
    FEEDBACK_CAMPAIGN_ID,
    FEEDBACK_FORM_ID,
    FORM_ID,
    FORM_PATH,
    claims_for,
    feedback_link,
    form_link,
    set_consent,
)
from tests.integration.test_submit import feed, open_form

Client = AsyncTestClient[Litestar]
THANKS = f"{FORM_PATH}/thanks"
CALENDAR = f"{FORM_PATH}/event.ics"
MATTI = {
    "first_name": "Matti",
    "last_name": "Korhonen",
    "email": "m•••@lampo.example",
    "phone": "+358•••••••01",
}


async def submit(client: Client, url: str, form_path: str = FORM_PATH, **values: str) -> str:
    """Open `url` and post its form with `values`; the thank-you page's address."""
    hidden = await open_form(client, url)
    answer = await client.post(f"{form_path}/submit", data=hidden | values, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    location: str = answer.headers["location"]
    return location


def thanks_cookie(client: Client) -> str | None:
    value: str | None = client.cookies.get(THANKS_COOKIE)
    return value


async def test_a_link_submit_thanks_with_the_contact_person_and_the_event(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    location = await submit(client, await form_link(repository, links, "cust-1001"), **MATTI)
    assert location == f"{THANKS}?lang=fi"  # nothing personal, no token

    page = await client.get(location)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    text = page.text
    assert 'lang="fi"' in text
    assert "Olemme vastaanottaneet ilmoittautumisesi: Kaamos Spring Summit 2027." in text
    # The contact person as on the form page, the phone in Finnish national format.
    assert "Aino Virtanen" in text
    assert '<a href="tel:+358401234567">040 1234567</a>' in text
    assert "mailto:aino.virtanen@kaamos.example" in text
    assert 'href="/card?t=' in text
    assert 'href="/card/vcard?t=' in text
    assert "Aino Virtanen auttaa mielellään" in text
    # The event, in Finnish, and the calendar file.
    assert "torstai 15. huhtikuuta 2027 9.00\u201316.30 (aikavyöhyke: Suomi)" in text
    assert "Kaamos Instruments, Helsinki office, Revontulentie 8, 00100 Helsinki" in text
    assert f'href="{CALENDAR}?lang=fi" download>Lisää kalenteriin</a>' in text

    ics = await client.get(f"{CALENDAR}?lang=fi")
    assert ics.status_code == 200
    assert ics.headers["content-type"] == "text/calendar; charset=utf-8"
    assert ics.headers["content-disposition"] == f'attachment; filename="{FORM_ID}.ics"'
    assert ics.headers["cache-control"] == "no-store"
    (entry,) = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
    assert entry["DTSTART"].params["TZID"] == "Europe/Helsinki"
    assert str(entry["ORGANIZER"]) == "mailto:aino.virtanen@kaamos.example"
    assert entry["ORGANIZER"].params["CN"] == "Aino Virtanen"
    assert str(entry["UID"]) == f"{FORM_ID}@testserver.local"


async def test_the_cookie_is_short_lived_http_only_strict_and_only_for_the_forms_pages(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    hidden = await open_form(client, await form_link(repository, links, "cust-1001"))
    answer = await client.post(f"{FORM_PATH}/submit", data=hidden | MATTI, follow_redirects=False)
    (header,) = [
        h for h in answer.headers.get_list("set-cookie") if h.startswith(f"{THANKS_COOKIE}=")
    ]
    cookie = SimpleCookie(header)[THANKS_COOKIE]
    assert cookie["path"] == f"/f/{FORM_ID}/"
    assert cookie["max-age"] == "1800"
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "strict"
    # Its payload holds ids only, like every link token.
    assert "matti" not in cookie.value.lower()


async def test_anyone_else_gets_the_plain_page_with_the_calendar_file(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    page = await client.get(THANKS, headers={"Accept-Language": "sv"})
    assert page.status_code == 200
    assert 'lang="sv"' in page.text
    assert "contact-panel" not in page.text
    assert "Aino" not in page.text
    assert f'href="{CALENDAR}?lang=sv"' in page.text
    ics = await client.get(f"{CALENDAR}?lang=sv")
    (entry,) = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
    # Organised by the form's fallback team, which is nobody's personal contact.
    assert str(entry["ORGANIZER"]) == "mailto:asiakaspalvelu@kaamos.example"
    assert str(entry["SUMMARY"]) == "Kaamos Spring Summit 2027"


async def test_an_anonymous_submit_thanks_without_a_contact_and_clears_an_earlier_cookie(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    await submit(client, await form_link(repository, links, "cust-1001"), **MATTI)
    assert thanks_cookie(client)
    location = await submit(
        client,
        FORM_PATH,
        first_name="Liisa",
        last_name="Uusi",
        email="liisa.uusi@example.fi",
    )
    assert thanks_cookie(client) is None
    page = await client.get(location)
    assert "Aino" not in page.text
    assert "contact-panel" not in page.text
    assert "Add to calendar" in page.text  # the generic form's language, the browser's


async def test_a_forged_expired_or_revoked_cookie_shows_nothing_personal(
    client: Client, repository: Repository, links: LinkBuilder, signer: LinkSigner
) -> None:
    claims = await claims_for(repository, "cust-1001")
    other_purpose = signer.sign(TokenPurpose.FORM, claims)  # a link token is not a thanks one
    expired = signer.sign(TokenPurpose.THANKS, claims, signed_at=time.time() - 31 * 60)
    stale = signer.sign(TokenPurpose.THANKS, LinkClaims("cust-1001", claims.campaign_id, 7))
    for value in ("garbage", other_purpose, expired, stale):
        client.cookies.set(THANKS_COOKIE, value, domain="testserver.local", path=THANKS)
        page = await client.get(THANKS)
        assert page.status_code == 200
        assert "Aino" not in page.text, value
        ics = await client.get(CALENDAR)
        assert b"aino" not in ics.content.lower()
        client.cookies.clear()
    fresh = signer.sign(TokenPurpose.THANKS, claims)
    client.cookies.set(THANKS_COOKIE, fresh, domain="testserver.local", path=THANKS)
    assert "Aino Virtanen" in (await client.get(THANKS)).text


async def test_not_you_or_a_withdrawal_after_the_submit_hides_the_contact_again(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    location = await submit(client, await form_link(repository, links, "cust-1001"), **MATTI)
    assert "Aino Virtanen" in (await client.get(location)).text
    await set_consent(repository, "cust-1001", ConsentAction.WITHDRAWN)
    assert "Aino" not in (await client.get(location)).text
    await set_consent(repository, "cust-1001", ConsentAction.GRANTED)
    assert "Aino Virtanen" in (await client.get(location)).text
    await repository.bump_generation("cust-1001")
    assert "Aino" not in (await client.get(location)).text


async def test_a_form_without_an_event_offers_no_calendar(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    page = await client.get(f"/f/{FEEDBACK_FORM_ID}/thanks?lang=en")
    assert page.status_code == 200
    assert "event.ics" not in page.text
    assert "We have received your feedback." in page.text
    missing = await client.get(f"/f/{FEEDBACK_FORM_ID}/event.ics")
    assert missing.status_code == 404
    assert (await client.get("/f/no-such-form/event.ics")).status_code == 404
    assert (await client.get("/f/no-such-form/thanks")).status_code == 404


async def test_head_on_the_thank_you_page_and_the_file_discloses_nothing(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    await submit(client, await form_link(repository, links, "cust-1001"), **MATTI)
    for path in (THANKS, CALENDAR):
        answer = await client.head(path)
        assert answer.status_code < 500
        assert answer.content == b""


async def test_feedback_with_a_rating_and_an_nps_is_stored_fed_and_counted(
    client: Client, repository: Repository, links: LinkBuilder, redis_client: Redis
) -> None:
    url = await feedback_link(repository, links, "cust-1005")
    form = (await client.get(url)).text
    assert 'value="Kadri"' in form
    assert "<legend>How likely are you to recommend" in form
    assert "0 = Not at all likely" in form
    assert "10 = Extremely likely" in form

    bad = await open_form(client, url)
    refused = await client.post(
        f"/f/{FEEDBACK_FORM_ID}/submit",
        data=bad | {"email": "k•••@tallinnbio.example", "overall": "6", "recommend": "9"},
    )
    assert refused.status_code == 422
    assert "Please choose a number from 1 to 5." in refused.text
    assert 'name="recommend" value="9" checked' in refused.text

    location = await submit(
        client,
        url,
        f"/f/{FEEDBACK_FORM_ID}",
        email="k•••@tallinnbio.example",
        first_name="Kadri",
        last_name="Tamm",
        overall="4",
        recommend="9",
        comments="More hands-on demos, please.",
    )
    thanks = (await client.get(location)).text
    assert "We have received your feedback." in thanks
    assert "Emily Carter" in thanks
    assert "Emily Carter is glad to hear from you." in thanks
    assert '<a href="tel:+358407654321">+358 40 7654321</a>' in thanks  # en: international
    (submission,) = [c for c in await feed(redis_client) if c.kind == "submission"]
    assert submission.form_id == FEEDBACK_FORM_ID
    assert submission.campaign_id == FEEDBACK_CAMPAIGN_ID
    assert submission.values["overall"] == "4"
    assert submission.values["recommend"] == "9"
    assert submission.values["comments"] == "More hands-on demos, please."
    admin = AdminService(repository, CatalogCache(repository), links, 1095)
    (funnel,) = await admin.funnels(FEEDBACK_CAMPAIGN_ID)
    assert (funnel.submitted, funnel.submissions) == (1, 1)


async def test_the_card_link_on_the_page_is_dated_like_the_submit(
    client: Client, repository: Repository, signer: LinkSigner
) -> None:
    """A reload must not mint a fresher card link: it lives as long as one made at the
    submit."""
    submitted_at = int(time.time()) - 600
    claims = await claims_for(repository, "cust-1001")
    thanks = signer.sign(TokenPurpose.THANKS, claims, signed_at=submitted_at)
    client.cookies.set(THANKS_COOKIE, thanks, domain="testserver.local", path=THANKS)
    page = (await client.get(THANKS)).text
    card_token = re.search(r'href="/card\?t=([^"]+)"', page)
    assert card_token is not None
    card = signer.verify(TokenPurpose.CARD, unquote(card_token.group(1)))
    assert card.signed_at == submitted_at
    assert card.claims == claims
