"""Posting the hosted form in Chromium: messages next to the fields, a stored change, and
"Not you?"."""

from __future__ import annotations

import msgspec
import redis
from playwright.sync_api import Page, expect

from prefill.models import ChangeEvent
from tests.browser.harness import ExampleSite, csp_violations, screenshot
from tests.helpers import feed_entries, stored_customer


def test_broken_email_and_phone_get_messages_next_to_them_and_nothing_is_lost(
    site: ExampleSite, page: Page, redis_url: str
) -> None:
    page.goto(site.form_url("cust-1002"))  # not asked for marketing yet: a box to tick
    page.fill("#field-last_name", "Korhonen-Virtanen")
    page.fill("#field-email", "matti@")
    page.fill("#field-phone", "123")
    page.fill("#field-questions", "Onko pysäköintiä?")
    page.check("#consent-email_marketing")
    page.get_by_role("button", name="Ilmoittaudu").click()

    expect(page.locator("#error-email")).to_have_text(
        "Anna sähköpostiosoite muodossa nimi@esimerkki.fi."
    )
    expect(page.locator("#error-phone")).to_contain_text("Anna puhelinnumero")
    expect(page.locator("#field-email")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#field-email")).to_have_value("matti@")
    expect(page.locator("#field-phone")).to_have_value("123")
    expect(page.locator("#field-last_name")).to_have_value("Korhonen-Virtanen")
    expect(page.locator("#field-questions")).to_have_value("Onko pysäköintiä?")
    expect(page.locator("#consent-email_marketing")).to_be_checked()
    assert csp_violations(page) == []
    screenshot(page, "form-errors-fi")
    with redis.Redis.from_url(redis_url) as raw:
        assert feed_entries(raw) == []


def test_a_valid_submission_reaches_redis_and_the_change_feed(
    site: ExampleSite, page: Page, redis_url: str
) -> None:
    page.goto(site.form_url("cust-1003"))
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    page.fill("#field-phone", "+46 70 123 45 67")
    page.select_option("#field-diet", "vegan")
    page.get_by_role("button", name="Anmäl dig").click()
    expect(page.get_by_role("heading", name="Tack")).to_be_visible()
    assert "t=" not in page.url  # the thank-you page's address carries no token
    screenshot(page, "thanks-sv")

    with redis.Redis.from_url(redis_url) as raw:
        record = stored_customer(raw, "cust-1003")
        changes = [msgspec.json.decode(e, type=ChangeEvent) for e in feed_entries(raw)]
    assert record["phone"] == "+46701234567"
    (submission,) = [c for c in changes if c.kind == "submission"]
    assert submission.customer_id == "cust-1003"
    assert submission.changed == ["diet", "phone"]


def test_not_you_clears_the_form_and_kills_the_link(site: ExampleSite, page: Page) -> None:
    link = site.form_url("cust-1005")
    page.goto(link)
    expect(page.locator("#field-first_name")).to_have_value("Kadri")
    page.get_by_role("button", name="Clear my details and disable this link").click()
    expect(page.locator("#field-first_name")).to_have_value("")
    page.goto(link)
    expect(page.locator("#field-first_name")).to_have_value("")
