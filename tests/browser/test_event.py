"""After the form, in Chromium: the thank-you page with the contact person and the event's
calendar file, and the feedback form answered with clicks and the keyboard."""

from __future__ import annotations

from pathlib import Path

import icalendar
import msgspec
import redis
from playwright.sync_api import Page, expect

from prefill.models import ChangeEvent
from tests.browser.harness import ExampleSite, csp_violations, screenshot
from tests.browser.test_hosted_pages import PHONE
from tests.helpers import feed_entries


def test_a_valid_submit_thanks_with_the_contact_person_and_a_calendar_file(
    site: ExampleSite, page: Page, tmp_path: Path
) -> None:
    page.goto(site.form_url("cust-1001"))
    page.select_option("#field-diet", "vegan")
    page.get_by_role("button", name="Ilmoittaudu").click()

    expect(page.get_by_role("heading", name="Kiitos")).to_be_visible()
    assert "t=" not in page.url
    panel = page.locator(".contact-panel")
    expect(panel.locator(".contact-name")).to_have_text("Aino Virtanen")
    expect(panel.locator('a[href="tel:+358401234567"]')).to_have_text("040 1234567")
    assert panel.locator(".contact-photo").evaluate("img => img.naturalWidth") > 0
    expect(page.get_by_text("torstai 15. huhtikuuta 2027 9.00")).to_be_visible()
    assert csp_violations(page) == []
    screenshot(page, "thanks-event-fi")

    add = page.get_by_role("link", name="Lisää kalenteriin")
    with page.expect_download() as download:
        add.click()
    assert download.value.suggested_filename == "spring-summit-2027.ics"
    saved = tmp_path / "event.ics"
    download.value.save_as(saved)
    calendar = icalendar.Calendar.from_ical(saved.read_bytes())
    (entry,) = calendar.walk("VEVENT")
    assert isinstance(entry, icalendar.Event)
    assert entry["DTSTART"].params["TZID"] == "Europe/Helsinki"
    assert entry.start.isoformat() == "2027-04-15T09:00:00+03:00"
    assert str(entry["ORGANIZER"]) == "mailto:aino.virtanen@kaamos.example"
    assert entry["ORGANIZER"].params["CN"] == "Aino Virtanen"

    # On a phone the contact person and the calendar link are both within reach.
    page.set_viewport_size(PHONE)
    page.reload()
    name = page.locator(".contact-panel .contact-name").bounding_box()
    assert name is not None
    assert name["y"] + name["height"] <= PHONE["height"]
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], "nothing sticks out sideways on a phone"
    screenshot(page, "thanks-event-phone-fi")


def test_feedback_is_answered_by_clicks_and_keyboard_and_reaches_the_feed(
    site: ExampleSite, page: Page, redis_url: str
) -> None:
    page.goto(site.feedback_url("cust-1005"))
    expect(page.get_by_role("heading", name="How was the Summit?")).to_be_visible()
    expect(page.locator("#field-first_name")).to_have_value("Kadri")
    overall = page.get_by_role("group", name="How satisfied were you with the Summit overall?")
    recommend = page.get_by_role("group", name="How likely are you to recommend")
    expect(overall.get_by_text("5 = Excellent")).to_be_visible()
    expect(recommend.get_by_text("0 = Not at all likely")).to_be_visible()

    # Sending with no rating marks the group, keeps what was typed.
    page.fill("#field-comments", "More hands-on demos, please.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#error-overall")).to_have_text("Please fill in this field.")
    expect(page.locator("#field-comments")).to_have_value("More hands-on demos, please.")
    screenshot(page, "feedback-errors-en")

    # The rating by keyboard: into the group, then along the scale with the arrow keys.
    overall.get_by_role("radio", name="1", exact=True).focus()
    page.keyboard.press("Space")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    expect(overall.get_by_role("radio", name="4", exact=True)).to_be_checked()
    # The NPS by a click on its number (the radio lies over the number it shows).
    recommend.get_by_role("radio", name="9", exact=True).click()
    expect(recommend.get_by_role("radio", name="9", exact=True)).to_be_checked()
    assert csp_violations(page) == []
    screenshot(page, "feedback-filled-en")
    page.get_by_role("button", name="Send").click()

    expect(page.get_by_text("We have received your feedback.")).to_be_visible()
    expect(page.locator(".contact-panel .contact-name")).to_have_text("Emily Carter")
    expect(page.get_by_role("link", name="Add to calendar")).to_have_count(0)
    screenshot(page, "feedback-thanks-en")
    with redis.Redis.from_url(redis_url) as raw:
        changes = [msgspec.json.decode(e, type=ChangeEvent) for e in feed_entries(raw)]
    (submission,) = [c for c in changes if c.kind == "submission"]
    assert submission.form_id == "summit-feedback-2027"
    assert (submission.values["overall"], submission.values["recommend"]) == ("4", "9")


def test_the_feedback_scales_fit_a_phone(site: ExampleSite, page: Page) -> None:
    page.set_viewport_size(PHONE)
    page.goto(site.feedback_url("cust-1003"))
    expect(page.get_by_role("heading", name="Hur var Summit?")).to_be_visible()
    recommend = page.get_by_role("group", name="Hur troligt är det")
    expect(recommend.get_by_text("10 = Mycket troligt")).to_be_visible()
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], "nothing sticks out sideways on a phone"
    # Every number is a target a thumb can hit (WCAG 2.5.8 asks for 24 px; these are 44).
    for box in recommend.locator(".scale-option span").evaluate_all(
        "spans => spans.map((s) => s.getBoundingClientRect().height)"
    ):
        assert box >= 44
    screenshot(page, "feedback-phone-sv")
