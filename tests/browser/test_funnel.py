"""The funnel in a real browser: a person's open is what the page's script reports, a link
used seconds after it was sent is a scanner's, and the dashboard charts only the opens."""

from __future__ import annotations

from playwright.sync_api import Browser, Page

from prefill.apikeys import Scope
from tests.browser.conftest import AXE_SCRIPT, unavailable
from tests.browser.harness import ExampleSite, csp_violations, screenshot
from tests.browser.test_accessibility import BLOCKING_IMPACTS, RUN_AXE


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
            for bar in dashboard.locator("svg rect").all()
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
