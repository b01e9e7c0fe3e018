"""The hosted form and the contact card, as a person sees them in Chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from tests.browser.harness import ExampleSite, csp_violations, screenshot

PHONE = ViewportSize(width=390, height=844)


@pytest.mark.parametrize(
    ("customer_id", "lang", "first_name", "button", "contact_heading"),
    [
        ("cust-1001", "fi", "Matti", "Ilmoittaudu", "Yhteyshenkilösi"),
        ("cust-1003", "sv", "Björn", "Anmäl dig", "Din kontaktperson"),
        ("cust-1005", "en", "Kadri", "Register", "Your contact person"),
    ],
)
def test_hosted_form_is_prefilled_in_the_customers_language(
    site: ExampleSite,
    page: Page,
    customer_id: str,
    lang: str,
    first_name: str,
    button: str,
    contact_heading: str,
) -> None:
    page.goto(site.form_url(customer_id))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("#field-first_name")).to_have_value(first_name)
    expect(page.get_by_role("button", name=button, exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name=contact_heading)).to_be_visible()
    assert page.locator(".contact-photo").evaluate("img => img.naturalWidth") > 0
    assert csp_violations(page) == []
    screenshot(page, f"form-{lang}")


def test_contact_card_works_on_a_phone(site: ExampleSite, page: Page) -> None:
    page.set_viewport_size(PHONE)
    page.goto(site.card_url("cust-1003"))
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    assert page.locator(".contact-photo").evaluate("img => img.naturalWidth") > 0
    expect(page.locator('a[href="tel:+358501234568"]')).to_be_visible()
    expect(page.locator('a[href^="mailto:"]')).to_have_text("johan.lindqvist@kaamos.example")
    add = page.get_by_role("link", name="Lägg till i kontakter")
    expect(add).to_have_attribute("download", "")
    with page.expect_download() as download:
        add.click()
    assert download.value.suggested_filename == "johan-lindqvist.vcf"
    expect(page.get_by_role("img", name="Visitkortets QR-kod")).to_be_visible()
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], "nothing sticks out sideways on a phone"
    assert csp_violations(page) == []
    screenshot(page, "card-phone-sv")


def test_on_a_phone_the_contact_person_is_in_the_first_screen(
    site: ExampleSite, page: Page
) -> None:
    page.set_viewport_size(PHONE)
    page.goto(site.form_url("cust-1001"))
    box = page.locator(".contact-panel .contact-name").bounding_box()
    assert box is not None
    assert box["y"] + box["height"] <= PHONE["height"]
    screenshot(page, "phone-contact-first")
