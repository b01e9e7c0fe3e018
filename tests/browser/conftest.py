"""Fixtures for tests in a real browser: Debian's Chromium driven by Playwright.

For a new browser test, take:
- `site`: the example data freshly loaded, with `site.url` (the running service),
  `site.form_url("cust-1001")`, `site.form_token(...)` and `site.card_url(...)`;
- `page`: a new Playwright page in its own context (no shared cookies or storage);
  `csp_violations(page)` (harness.py) lists what the Content-Security-Policy blocked;
- `landing` and `foreign_landing`: examples/landing on an origin the form allows, and on one it
  does not;
- `screenshot(page, name)` (harness.py): keeps a PNG under test-artifacts/browser/.

Without Chromium or Playwright these tests skip and say how to install them; with
PREFILL_REQUIRE_BROWSER=1 (as in .ci/run) they fail instead.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from prefill.storage import EmbeddedRedis
from tests.browser.harness import CSP_LISTENER, ExampleSite, LandingSite, LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
AXE_SCRIPT = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
REQUIRE_BROWSER = "PREFILL_REQUIRE_BROWSER"


def unavailable(reason: str) -> None:
    """Skip with the reason, or fail where the browser tests must run."""
    if os.environ.get(REQUIRE_BROWSER) == "1":
        pytest.fail(f"{reason} ({REQUIRE_BROWSER}=1: browser tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if importlib.util.find_spec("playwright") is None:
        unavailable("Playwright is not installed: .venv/bin/pip install -e '.[dev]'")
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM}: install it with `sudo apt-get install chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Debian's Chromium, never a browser download of Playwright's own.
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def live_server(
    redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server = LiveServer(redis_server.url, tmp_path_factory.mktemp("live") / "serve.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def landing(live_server: LiveServer) -> Iterator[LandingSite]:
    site = LandingSite(live_server.url)
    site.start()
    yield site
    site.stop()


@pytest.fixture(scope="package")
def foreign_landing(live_server: LiveServer) -> Iterator[LandingSite]:
    """The same landing page on an origin the form does not list."""
    site = LandingSite(live_server.url)
    site.start()
    yield site
    site.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """The session's redis-server, emptied: the browser drives one live server, on one Redis
    (the cluster's share of the pages is tested without a browser)."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def site(live_server: LiveServer, redis_url: str, landing: LandingSite) -> ExampleSite:
    """The session's Redis emptied (by `redis_url`) and the examples loaded again."""
    example = ExampleSite(live_server, redis_url)
    example.load(allowed_origins=[landing.origin])
    landing.requested.clear()
    return example


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.add_init_script(CSP_LISTENER)
    yield page
    context.close()


@pytest.fixture
def axe_page(browser: Browser) -> Iterator[Page]:
    """A page that lets axe-core be injected: its own context bypasses the pages' CSP, which
    (rightly) refuses inline scripts. CSP itself is checked with `page`."""
    if not AXE_SCRIPT.exists():
        unavailable("axe-core is not installed: run `npm ci` in tests/browser")
    context = browser.new_context(bypass_csp=True, locale="en-GB")
    yield context.new_page()
    context.close()
