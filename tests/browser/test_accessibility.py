"""axe-core on the hosted form and the contact card: no serious or critical violation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import AXE_SCRIPT
from tests.browser.harness import ExampleSite, screenshot

BLOCKING_IMPACTS = {"serious", "critical"}
RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
  }));
}"""

PAGES: dict[str, Callable[[ExampleSite], str]] = {
    "form-fi": lambda site: site.form_url("cust-1001"),
    "form-generic": lambda site: f"{site.url}/f/spring-summit-2027",
    "card-sv": lambda site: site.card_url("cust-1003"),
    "thanks-sv": lambda site: f"{site.url}/f/spring-summit-2027/thanks?lang=sv",
    "unsubscribe-en": lambda site: site.unsubscribe_url("cust-1005"),
    "feedback-en": lambda site: site.feedback_url("cust-1005"),
}


def blocking_violations(page: Page, name: str) -> list[dict[str, object]]:
    """axe-core's serious and critical findings on the page as it is; a screenshot kept."""
    page.add_script_tag(path=str(AXE_SCRIPT))
    violations = page.evaluate(RUN_AXE)
    screenshot(page, f"axe-{name}")
    return [v for v in violations if v["impact"] in BLOCKING_IMPACTS]


@pytest.mark.parametrize("name", sorted(PAGES))
def test_no_serious_accessibility_violations(site: ExampleSite, axe_page: Page, name: str) -> None:
    axe_page.goto(PAGES[name](site))
    blocking = blocking_violations(axe_page, name)
    assert blocking == [], blocking


def test_a_form_with_error_messages_has_no_serious_violations(
    site: ExampleSite, axe_page: Page
) -> None:
    axe_page.goto(site.form_url("cust-1001"))
    axe_page.fill("#field-email", "matti@")
    axe_page.get_by_role("button", name="Ilmoittaudu").click()
    axe_page.wait_for_selector("#error-email")
    assert blocking_violations(axe_page, "form-errors-fi") == []


def test_the_personal_thank_you_page_has_no_serious_violations(
    site: ExampleSite, axe_page: Page
) -> None:
    axe_page.goto(site.form_url("cust-1003"))
    axe_page.get_by_role("button", name="Anmäl dig").click()
    axe_page.wait_for_selector(".contact-panel")
    assert blocking_violations(axe_page, "thanks-personal-sv") == []


def test_a_feedback_form_with_a_rating_error_has_no_serious_violations(
    site: ExampleSite, axe_page: Page
) -> None:
    axe_page.goto(site.feedback_url("cust-1001"))
    axe_page.get_by_role("button", name="Lähetä").click()
    axe_page.wait_for_selector("#error-overall")
    assert blocking_violations(axe_page, "feedback-errors-fi") == []
