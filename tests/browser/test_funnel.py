"""The funnel in a real browser: a person's open is what the page's script reports, a link
used seconds after it was sent is a scanner's, and the dashboard charts only the opens."""

from __future__ import annotations

import msgspec
from playwright.sync_api import Browser, Page, expect

from prefill.apikeys import Scope
from prefill.imports import parse_forms
from prefill.store import Repository
from tests.browser.conftest import AXE_SCRIPT, unavailable
from tests.browser.harness import (
    ExampleSite,
    csp_violations,
    screenshot,
    with_repository,
)
from tests.browser.test_accessibility import BLOCKING_IMPACTS, RUN_AXE
from tests.conftest import EXAMPLES
from tests.helpers import CAMPAIGN_ID, FORM_ID


def open_and_wait_for_report(page: Page, url: str) -> int:
    """Open a link as a person does; the status of the page's report that it is in view."""
    with page.expect_response(lambda r: r.url.endswith("/seen")) as report:
        page.goto(url)
    return report.value.status


def test_only_a_persons_open_is_charted_as_an_open(
    site: ExampleSite, page: Page, browser: Browser
) -> None:
    # Kadri opens the email she got ten minutes ago; Björn's link is fetched by his mail
    # gateway's sandbox browser the moment it arrives.
    assert open_and_wait_for_report(page, site.form_url_sent_earlier("cust-1005")) == 204
    assert page.input_value("#field-first_name") == "Kadri"
    assert csp_violations(page) == []
    assert open_and_wait_for_report(page, site.form_url("cust-1003")) == 204

    key = site.new_admin_key(Scope.READ)
    context = browser.new_context(
        http_credentials={"username": "marketing", "password": key}, bypass_csp=True
    )
    try:
        dashboard = context.new_page()
        dashboard.goto(f"{site.url}/admin/dashboard")
        bars = {
            bar.get_attribute("data-key"): int(bar.get_attribute("data-value") or -1)
            # The invitation's section: the examples have a campaign per form.
            for bar in dashboard.locator("section.campaign", has_text=CAMPAIGN_ID)
            .locator("svg rect")
            .all()
        }
        assert (bars["opened"], bars["prefilled"]) == (1, 1)
        assert bars["scanner-early"] == 2  # the sandbox's page load, and its script's report
        assert bars["loads"] == 1
        screenshot(dashboard, "dashboard")
        if not AXE_SCRIPT.exists():
            unavailable("axe-core is not installed: run `npm ci` in tests/browser")
        dashboard.add_script_tag(path=str(AXE_SCRIPT))
        violations = dashboard.evaluate(RUN_AXE)
        assert [v for v in violations if v["impact"] in BLOCKING_IMPACTS] == []
    finally:
        context.close()


LONG_LABEL = "Your job title or role, as it should be printed on your name badge"
FITS_IN_ITS_CHART = """() => [...document.querySelectorAll("svg.chart-svg")].flatMap((svg) => {
  const width = svg.viewBox.baseVal.width;
  return [...svg.querySelectorAll("text")]
    .map((text) => ({ text: text.textContent, box: text.getBBox() }))
    .filter(({ box }) => box.x < 0 || box.x + box.width > width)
    .map(({ text, box }) => `${text}: ${box.x}..${box.x + box.width} of ${width}`);
})"""
"""Every label and figure of every chart, as the browser draws it, inside its chart."""


def test_the_dashboard_draws_long_labels_and_figures_whole(
    site: ExampleSite, page: Page, browser: Browser, redis_url: str
) -> None:
    async def lengthen_a_label(repository: Repository) -> None:
        (form,) = [
            f for f in parse_forms((EXAMPLES / "forms.json").read_bytes()) if f.id == FORM_ID
        ]
        fields = [
            msgspec.structs.replace(f, label=f.label | {"en": LONG_LABEL})
            if f.name == "job_title"
            else f
            for f in form.fields
        ]
        await repository.save_catalog(forms=[msgspec.structs.replace(form, fields=fields)])

    with_repository(redis_url, lengthen_a_label)
    page.goto(site.form_url_sent_earlier("cust-1005"))
    page.fill("#field-job_title", "Chief of everything measured")
    page.get_by_role("button", name="Register").click()
    page.wait_for_url("**/thanks**")

    key = site.new_admin_key(Scope.READ)
    context = browser.new_context(http_credentials={"username": "marketing", "password": key})
    try:
        dashboard = context.new_page()
        dashboard.goto(f"{site.url}/admin/dashboard")
        corrected = dashboard.locator('svg[aria-labelledby="corrected-1-title"] text')
        expect(corrected.first).to_have_text(LONG_LABEL)
        expect(corrected.nth(1)).to_have_text("1 · 100% of submissions")
        assert dashboard.evaluate(FITS_IN_ITS_CHART) == []
        screenshot(dashboard, "dashboard-long-labels")
    finally:
        context.close()
