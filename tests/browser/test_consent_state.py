"""The consents in force, as a person sees them on their own form page: said in words with the
date, never a ticked box; withdrawn with one button, and the page then says so."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from prefill.models import ConsentAction, ConsentSource
from prefill.store import Repository
from tests.browser.conftest import AXE_SCRIPT
from tests.browser.harness import ExampleSite, csp_violations, screenshot, with_repository
from tests.browser.test_accessibility import BLOCKING_IMPACTS, RUN_AXE


def test_consents_in_force_are_shown_and_one_is_withdrawn_with_a_button(
    site: ExampleSite, page: Page, redis_url: str
) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(site.form_url_sent_earlier("cust-1003"))
    in_force = page.locator(".consent.in-force")
    expect(in_force).to_have_count(2)
    expect(in_force.first).to_contain_text("Gäller: du gav det här samtycket")
    expect(page.locator("form.registration input[type=checkbox]")).to_have_count(0)
    email = page.locator("#consent-in-force-email_marketing")
    expect(email).to_contain_text("nyhetsbrev")
    email.scroll_into_view_if_needed()
    screenshot(page, "form-consents-in-force-sv")

    email.get_by_role("button", name="Återkalla det här samtycket").click()
    page.wait_for_load_state()
    box = page.locator("input#consent-email_marketing")
    expect(box).to_be_visible()
    expect(box).not_to_be_checked()
    expect(page.locator("#consent-state-email_marketing")).to_contain_text(
        "Du återkallade det här samtycket"
    )
    expect(page.locator(".consent.in-force")).to_have_count(1)  # personalization, still
    expect(page.locator("#field-first_name")).to_have_value("Björn")
    assert csp_violations(page) == []
    box.scroll_into_view_if_needed()
    screenshot(page, "form-consent-withdrawn-sv")

    async def last_event(repository: Repository) -> tuple[str, ConsentAction, ConsentSource]:
        last = (await repository.consent_history("cust-1003"))[-1]
        return last.purpose, last.action, last.source

    assert with_repository(redis_url, last_event) == (
        "email_marketing",
        ConsentAction.WITHDRAWN,
        ConsentSource.FORM,
    )


def test_the_consent_state_has_no_serious_accessibility_violations(
    site: ExampleSite, axe_page: Page
) -> None:
    axe_page.goto(site.form_url("cust-1004"))  # one consent in force, one withdrawn
    axe_page.add_script_tag(path=str(AXE_SCRIPT))
    violations = axe_page.evaluate(RUN_AXE)
    screenshot(axe_page, "axe-form-consent-state-sv")
    assert [v for v in violations if v["impact"] in BLOCKING_IMPACTS] == []
