"""The pieces of a real-browser test: the service as a process, a second origin, signed links.

Kept apart from the fixtures (conftest.py) so a test can import the types it is given.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode, urlsplit

import msgspec

from prefill.apikeys import Scope, create_key
from prefill.imports import import_directory, parse_forms
from prefill.links import LinkBuilder
from prefill.storage import free_tcp_port
from prefill.store import Repository
from prefill.store.client import connect
from prefill.tokens import LinkClaims, LinkSigner, TokenPurpose
from tests.conftest import EXAMPLES, PSEUDONYMS, SECRET
from tests.helpers import CAMPAIGN_ID, FEEDBACK_CAMPAIGN_ID, FEEDBACK_FORM_ID, FORM_ID

if TYPE_CHECKING:
    from playwright.sync_api import Page

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
LANDING_DIR = EXAMPLES / "landing"
ORGANIZATION = "Kaamos Instruments Oy"


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode} at start-up")
        try:
            with urllib.request.urlopen(f"{url}/health/ready", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the service did not become ready in time")


class LiveServer:
    """`prefill serve` as its own process on a free port, against the given Redis."""

    def __init__(self, redis_url: str, log_path: Path) -> None:
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log_path
        self._redis_url = redis_url
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFILL_")}
        env.update(
            PREFILL_SECRET_KEYS=SECRET,
            PREFILL_REDIS_URL=self._redis_url,
            PREFILL_PUBLIC_URL=self.url,
            PREFILL_ORGANIZATION=ORGANIZATION,
        )
        command = [sys.executable, "-m", "prefill.cli", "serve", "--port", str(self.port)]
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        wait_until_ready(self.url, self._process)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


class LandingSite:
    """examples/landing on its own origin, as it is, opened with the widget loaded from
    `service_url` (its `?service=`, as `prefill demo` prints it). Records every path it is
    asked for, so a test can prove a token never reached it."""

    def __init__(self, service_url: str) -> None:
        self.requested: list[str] = []
        site = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(LANDING_DIR), **kwargs)

            def do_GET(self) -> None:
                site.requested.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the paths are in `requested`."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.page = f"{self.origin}/?{urlencode({'service': service_url})}"
        """The landing page's address without a token: what the address bar shows after."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def link(self, token: str, place: str = "fragment") -> str:
        """The landing page with a token, as a campaign email links it: in the fragment (never
        sent to the landing page's server) or in the query."""
        return f"{self.page}#t={token}" if place == "fragment" else f"{self.page}&t={token}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def with_repository(redis_url: str, action: Callable[[Repository], Awaitable[T]]) -> T:
    """Run `action` on a Repository from a sync test. In a thread of its own, because
    Playwright's sync API keeps an event loop running in the test's thread."""

    async def run() -> T:
        client = connect(redis_url, timeout_seconds=5, retries=1)
        try:
            return await action(Repository(client, PSEUDONYMS))
        finally:
            await client.aclose()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


class ExampleSite:
    """The examples/ data in the service's Redis, the example form embeddable from
    `allowed_origins`, and signed links for the example customers (cust-1001 … cust-1007)."""

    def __init__(self, server: LiveServer, redis_url: str) -> None:
        self.server = server
        self.url = server.url
        self._redis_url = redis_url
        self._signer = LinkSigner([SECRET], 365 * 86_400)
        self._links = LinkBuilder(self._signer, server.url)

    def load(self, allowed_origins: list[str]) -> None:
        async def load(repository: Repository) -> None:
            await import_directory(repository, EXAMPLES)
            forms = [
                msgspec.structs.replace(form, allowed_origins=allowed_origins)
                for form in parse_forms((EXAMPLES / "forms.json").read_bytes())
            ]
            await repository.save_catalog(forms=forms)

        with_repository(self._redis_url, load)

    def claims(self, customer_id: str) -> LinkClaims:
        customer = with_repository(self._redis_url, lambda repo: repo.get_customer(customer_id))
        return LinkClaims(customer_id, CAMPAIGN_ID, customer.generation if customer else 0)

    def form_url(self, customer_id: str, form_id: str = FORM_ID) -> str:
        """The signed form link the customer's campaign email would carry."""
        return self._links.form_url(self.claims(customer_id), form_id)

    def feedback_url(self, customer_id: str) -> str:
        """The customer's link to the example feedback form, from its own campaign."""
        claims = msgspec.structs.replace(self.claims(customer_id), campaign_id=FEEDBACK_CAMPAIGN_ID)
        return self._links.form_url(claims, FEEDBACK_FORM_ID)

    def form_url_sent_earlier(self, customer_id: str, minutes: float = 10) -> str:
        """A form link signed `minutes` ago: an email a person opens later, not a scanner
        fetching it on delivery."""
        token = self._signer.sign(
            TokenPurpose.FORM, self.claims(customer_id), signed_at=time.time() - minutes * 60
        )
        return f"{self.url}/f/{FORM_ID}?t={token}"

    def new_admin_key(self, *scopes: Scope) -> str:
        """A new admin API key's secret."""
        new = create_key("browser test", list(scopes))
        with_repository(self._redis_url, lambda repo: repo.save_api_key(new.key))
        return new.secret

    def form_token(self, customer_id: str) -> str:
        return urlsplit(self.form_url(customer_id)).query.removeprefix("t=")

    def card_url(self, customer_id: str) -> str:
        return self._links.card_url(self.claims(customer_id))

    def unsubscribe_url(self, customer_id: str) -> str:
        return self._links.unsubscribe_url(self.claims(customer_id))


CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""
"""An init script: records what the page's Content-Security-Policy blocked."""


def csp_violations(page: Page) -> list[str]:
    return list(page.evaluate("window.__cspViolations || []"))


def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG kept as a test artifact under test-artifacts/browser/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
