"""Submitting the hosted form against a real Redis: CSRF, validation, storage, the change feed."""

from __future__ import annotations

import re

import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from prefill.links import LinkBuilder
from prefill.models import AuditKind, ChangeEvent, Channel, ConsentAction, ConsentSource
from prefill.store import Repository
from tests.helpers import FORM_ID, FORM_PATH, feed_entries_of, form_link, set_consent

SUBMIT = f"{FORM_PATH}/submit"
Client = AsyncTestClient[Litestar]


async def open_form(client: Client, url: str) -> dict[str, str]:
    """Open the form page as a browser does; the hidden fields it would post back."""
    page = await client.get(url)
    assert page.status_code == 200
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    assert "_csrf_token" in hidden
    return hidden


async def feed(redis_client: Redis) -> list[ChangeEvent]:
    entries = await feed_entries_of(redis_client)
    return [msgspec.json.decode(raw, type=ChangeEvent) for raw in entries]


async def test_a_broken_email_and_phone_get_two_messages_in_the_customers_language(
    client: Client, repository: Repository, links: LinkBuilder, redis_client: Redis
) -> None:
    # Päivi has not given the marketing consent: its box is there to tick.
    hidden = await open_form(client, await form_link(repository, links, "cust-1002"))
    before = await repository.get_customer("cust-1002")
    posted = hidden | {
        "first_name": "Matti",
        "last_name": "Korhonen-Uusi",
        "email": "matti@",
        "phone": "123",
        "questions": "Onko pysäköintiä?",
        "consent_email_marketing": "em-2026-01",
    }
    answer = await client.post(SUBMIT, data=posted)
    assert answer.status_code == 422
    assert 'lang="fi"' in answer.text
    assert "Anna sähköpostiosoite muodossa nimi@esimerkki.fi." in answer.text
    assert "Anna puhelinnumero suuntanumeroineen" in answer.text
    assert answer.text.count('aria-invalid="true"') == 2
    assert 'aria-describedby="error-email"' in answer.text
    for typed in ('value="matti@"', 'value="123"', 'value="Korhonen-Uusi"', "Onko pysäköintiä?"):
        assert typed in answer.text
    assert 'value="em-2026-01" checked' in answer.text
    # Still the customer's own page: their contact person and "Not you?".
    assert 'class="contact-panel"' in answer.text
    assert 'class="not-you"' in answer.text
    assert await repository.get_customer("cust-1002") == before
    assert await feed(redis_client) == []


async def test_control_characters_in_a_submission_are_refused_next_to_the_field(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    hidden = await open_form(client, await form_link(repository, links, "cust-1001"))
    before = await repository.get_customer("cust-1001")
    posted = hidden | {
        "first_name": "Matti\rTEL:+15550003",
        "last_name": "Korhonen",
        "email": "matti.korhonen@lampo.example",
        "questions": "Line one\r\nline two",  # a textarea keeps its line breaks
    }
    answer = await client.post(SUBMIT, data=posted)
    assert answer.status_code == 422
    assert "Poista kentästä näkymättömät ohjausmerkit." in answer.text
    assert answer.text.count('aria-invalid="true"') == 1
    assert 'aria-describedby="error-first_name"' in answer.text
    assert await repository.get_customer("cust-1001") == before


async def test_a_valid_submission_updates_the_customer_records_consent_and_feeds_it(
    client: Client, repository: Repository, links: LinkBuilder, redis_client: Redis
) -> None:
    # Matti once unsubscribed; ticking the box on the form is his own new grant.
    await set_consent(repository, "cust-1001", ConsentAction.WITHDRAWN, "email_marketing")
    hidden = await open_form(client, await form_link(repository, links, "cust-1001"))
    posted = hidden | {
        "first_name": "Matti",
        "last_name": "Korhonen",
        "email": "m•••@lampo.example",  # the masked value, left as it was shown
        "phone": "050 123 4567",
        "company": "Lämpötekniikka Korhonen Oy",
        "job_title": "Laboratoriopäällikkö",
        "diet": "vegan",
        "consent_email_marketing": "em-2026-01",
    }
    answer = await client.post(
        SUBMIT, data=posted, headers={"User-Agent": "Firefox/140"}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/f/{FORM_ID}/thanks?lang=fi"
    thanks = await client.get(answer.headers["location"])
    assert "Kiitos" in thanks.text

    customer = await repository.get_customer("cust-1001")
    assert customer is not None
    assert customer.email == "matti.korhonen@lampo.example"  # kept: the mask came back
    assert customer.phone == "+358501234567"
    assert customer.job_title == "Laboratoriopäällikkö"
    assert customer.attributes["diet"] == "vegan"
    history = await repository.consent_history("cust-1001")
    event = history[-1]
    assert (event.purpose, event.action, event.source) == (
        "email_marketing",
        ConsentAction.GRANTED,
        ConsentSource.FORM,
    )
    assert event.notice_version == "em-2026-01"
    assert event.user_agent == "Firefox/140"

    changes = await feed(redis_client)
    submission = next(c for c in changes if c.kind == "submission")
    assert submission.customer_id == "cust-1001"
    assert submission.campaign_id == "spring-summit-2027-invite"
    assert submission.changed == ["diet", "job_title", "phone"]
    assert submission.values["phone"] == "+358501234567"
    audit = await repository.audit_entries(customer_id="cust-1001")
    (submitted,) = [entry for entry in audit if entry.kind is AuditKind.SUBMISSION]
    assert submitted.fields == ["diet", "job_title", "phone"]
    # The thank-you page showed the contact person again: a disclosure like any other.
    (shown,) = [entry for entry in audit if entry.fields == ["contact_person"]]
    assert (shown.kind, shown.channel) == (AuditKind.DISCLOSURE, Channel.PAGE)


async def test_someone_without_a_link_registers_as_a_new_lead(
    client: Client, repository: Repository, redis_client: Redis
) -> None:
    hidden = await open_form(client, FORM_PATH)
    posted = hidden | {
        "first_name": "Liisa",
        "last_name": "Laine",
        "email": "liisa.laine@example.fi",
        "consent_personalization": "pz-2026-01",
    }
    answer = await client.post(
        SUBMIT, data=posted, headers={"Accept-Language": "sv"}, follow_redirects=False
    )
    assert answer.status_code == 303
    (submission,) = [c for c in await feed(redis_client) if c.kind == "submission"]
    assert submission.customer_id.startswith("lead-")
    assert submission.campaign_id == ""
    lead = await repository.get_customer(submission.customer_id)
    assert lead is not None
    assert (lead.email, lead.first_name, lead.locale) == ("liisa.laine@example.fi", "Liisa", "en")
    (event,) = await repository.consent_history(lead.id)
    assert (event.purpose, event.notice_version) == ("personalization", "pz-2026-01")


async def test_a_forged_or_revoked_link_in_a_submission_makes_a_lead_not_an_update(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    hidden = await open_form(client, await form_link(repository, links, "cust-1001"))
    await repository.bump_generation("cust-1001")  # "Not you?" meanwhile, in another tab
    before = await repository.get_customer("cust-1001")
    posted = hidden | {"first_name": "X", "last_name": "Y", "email": "x.y@example.fi"}
    assert (await client.post(SUBMIT, data=posted, follow_redirects=False)).status_code == 303
    assert await repository.get_customer("cust-1001") == before


async def test_a_submission_without_the_csrf_token_or_from_another_site_is_refused(
    client: Client, repository: Repository, redis_client: Redis
) -> None:
    hidden = await open_form(client, FORM_PATH)
    posted = {"first_name": "A", "last_name": "B", "email": "a.b@example.fi"}
    no_token = await client.post(SUBMIT, data=posted)
    assert no_token.status_code == 403
    cross_site = await client.post(
        SUBMIT, data=posted | hidden, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    fetched_cross_site = await client.post(
        SUBMIT, data=posted | hidden, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert fetched_cross_site.status_code == 403
    as_json = await client.post(SUBMIT, json=posted | hidden)
    assert as_json.status_code in (403, 415)
    assert await feed(redis_client) == []


async def test_a_browser_that_sends_origin_null_can_submit(
    client: Client, redis_client: Redis
) -> None:
    """Our pages' Referrer-Policy is no-referrer, so browsers send `Origin: null`."""
    hidden = await open_form(client, FORM_PATH)
    posted = hidden | {"first_name": "A", "last_name": "B", "email": "a.b@example.fi"}
    headers = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    answer = await client.post(SUBMIT, data=posted, headers=headers, follow_redirects=False)
    assert answer.status_code == 303
    assert len(await feed(redis_client)) == 1


async def test_a_submission_never_brings_back_a_customer_erased_meanwhile(
    repository: Repository, examples: None
) -> None:
    """What `submit` writes when the link's customer was erased between reading and writing."""
    customer = await repository.get_customer("cust-1001")
    assert customer is not None
    assert await repository.erase_customer("cust-1001") is not None
    saved = await repository.save_customers([customer], lambda _: {}, only_existing=True)
    assert saved.records == 0
    assert await repository.get_customer("cust-1001") is None
