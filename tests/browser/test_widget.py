"""widget.js on a landing page of another origin: fills the page's own form, takes the token
out of the address bar, and gives an origin the form does not list nothing."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Request, Route, expect

from tests.browser.harness import ExampleSite, LandingSite, screenshot

FINAL_STATE = re.compile(r"^(filled|empty|error|no-token)$")
HOST_FIELDS = ("given_name", "family_name", "email", "company", "job_title", "notes")


def wait_for_widget(page: Page) -> str:
    """The widget's final state: filled, empty, error or no-token."""
    script = page.locator("script[data-form]")
    expect(script).to_have_attribute("data-prefill-state", FINAL_STATE)
    return str(script.get_attribute("data-prefill-state"))


def field(page: Page, name: str) -> str:
    return page.locator(f'#register [name="{name}"]').input_value()


@pytest.mark.parametrize("place", ["query", "fragment"])
def test_widget_fills_the_host_form_and_strips_the_token(
    site: ExampleSite, landing: LandingSite, page: Page, place: str
) -> None:
    token = site.form_token("cust-1003")
    to_service: list[Request] = []
    page.on("request", lambda r: to_service.append(r) if r.url.startswith(site.url) else None)
    page.goto(landing.link(token, place))

    assert wait_for_widget(page) == "filled"
    assert token not in page.url
    assert page.evaluate("location.href") == landing.page
    # Mapped names (data-fields), same names, and a masked value left for the person to type.
    assert field(page, "given_name") == "Björn"
    assert field(page, "family_name") == "Åkerlund"
    assert field(page, "company") == "Kvarkens Analys Ab"
    assert field(page, "job_title") == "Laboratoriechef"
    assert field(page, "email") == ""
    contact = page.locator("#contact")
    expect(contact).to_be_visible()
    expect(contact.locator(".prefill-contact-name")).to_have_text("Johan Lindqvist")
    expect(contact.locator(".prefill-contact-vcard")).to_have_text("Lägg till i kontakter")

    api = [r for r in to_service if "/api/v1/" in r.url]
    assert len(api) == 1
    for request in to_service:
        headers = request.all_headers()
        assert "cookie" not in headers
        assert token not in headers.get("referer", ""), request.url
    if place == "fragment":
        assert not any(token in path for path in landing.requested)
    assert page.evaluate("document.cookie") == ""
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    screenshot(page, f"widget-{place}")


def test_origin_not_allowed_gets_nothing_and_the_form_still_works(
    site: ExampleSite, foreign_landing: LandingSite, page: Page
) -> None:
    token = site.form_token("cust-1001")
    page.goto(foreign_landing.link(token, "query"))

    assert wait_for_widget(page) in ("empty", "error")
    assert token not in page.url
    assert all(field(page, name) == "" for name in HOST_FIELDS)
    expect(page.locator("#contact")).to_be_hidden()
    page.fill("#given_name", "Matti")
    page.fill("#family_name", "Korhonen")
    page.fill("#email", "matti@example.fi")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#sent")).to_contain_text("given_name, family_name, email")
    screenshot(page, "widget-foreign-origin")


@pytest.mark.parametrize("token", ["", "forged.token", "x" * 600])
def test_a_bad_token_leaves_the_form_empty(
    site: ExampleSite, landing: LandingSite, page: Page, token: str
) -> None:
    page.goto(landing.link(token, "query"))
    assert wait_for_widget(page) in ("empty", "no-token")
    assert "t=" not in page.url
    assert all(field(page, name) == "" for name in HOST_FIELDS)


def test_what_the_person_typed_first_is_kept(
    site: ExampleSite, landing: LandingSite, page: Page
) -> None:
    # Hold the API answer back until the person has typed a name of their own.
    held: list[Route] = []
    page.route("**/api/v1/**", lambda route: held.append(route))
    page.goto(landing.link(site.form_token("cust-1003")))
    page.fill("#given_name", "Bjö")
    while not held:
        page.wait_for_timeout(20)
    held[0].continue_()
    assert wait_for_widget(page) == "filled"
    assert field(page, "given_name") == "Bjö"
    assert field(page, "family_name") == "Åkerlund"


def test_the_example_page_loads_the_widget_only_from_a_service_on_this_machine(
    site: ExampleSite, landing: LandingSite, page: Page
) -> None:
    token = site.form_token("cust-1003")
    page.goto(f"{landing.origin}/?service=http://prefill.example.com#t={token}")
    expect(page.locator("#register")).to_be_visible()
    assert page.locator("script[data-form]").count() == 0
    assert field(page, "given_name") == ""
