"""The fast routes (web/fast.py) answer byte for byte as Litestar's own handling of the same
routes does: status, every header in order, and body, for admitted, refused and failed links."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, NamedTuple
from unittest import mock

import pytest
from httpx import Response
from litestar import Litestar, get
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from litestar.types import Receive, Scope, Send

from prefill.app import create_app
from prefill.imports import import_directory
from prefill.links import LinkBuilder
from prefill.models import ConsentAction
from prefill.settings import Settings
from prefill.storage import EmbeddedRedis
from prefill.store import Repository
from prefill.store.client import connect
from prefill.tokens import LinkClaims, LinkSigner, TokenPurpose
from prefill.web.fast import FAST_ROUTE, Answer, FastDoor, fast_stack
from prefill.web.requests import RequestMiddleware
from tests.conftest import EXAMPLES, PSEUDONYMS, PUBLIC_URL, SECRET, make_settings
from tests.helpers import API_PATH, FORM_PATH, form_link, set_consent, token_of

Client = AsyncTestClient[Litestar]
REQUEST_ID = {"X-Request-ID": "0123456789abcdef0123456789abcdef"}
"""Echoed in the answer; a fresh random id would differ between the two apps."""
ALLOWED_ORIGIN = "http://localhost:8001"


class Pair(NamedTuple):
    fast: Client
    litestar: Client


@pytest.fixture
async def pair(settings: Settings, examples: None) -> AsyncIterator[Pair]:
    async with AsyncExitStack() as stack:
        fast = await stack.enter_async_context(
            AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL)
        )
        litestar = await stack.enter_async_context(
            AsyncTestClient(app=create_app(settings, fast_routes=False), base_url=PUBLIC_URL)
        )
        yield Pair(fast, litestar)


def as_sent(response: Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return response.status_code, list(response.headers.raw), response.content


async def assert_same(pair: Pair, url: str, headers: dict[str, str] | None = None) -> Response:
    """Both apps answer `url` alike; returns the fast one's answer."""
    sent = REQUEST_ID | (headers or {})
    fast = await pair.fast.get(url, headers=sent)
    litestar = await pair.litestar.get(url, headers=sent)
    pair.fast.cookies.clear()  # Each request says its own cookies.
    pair.litestar.cookies.clear()
    assert as_sent(fast) == as_sent(litestar)
    return fast


Link = Callable[[Repository, LinkBuilder], Awaitable[str]]


async def valid(repository: Repository, links: LinkBuilder) -> str:
    return token_of(await form_link(repository, links, "cust-1001"))


async def forged(repository: Repository, links: LinkBuilder) -> str:
    token = await valid(repository, links)
    return token[:-3] + ("xyz" if not token.endswith("xyz") else "abc")


async def expired(repository: Repository, links: LinkBuilder) -> str:
    # Signed 46 days ago; the example campaign's links live 45 days.
    with mock.patch.object(time, "time", return_value=time.time() - 46 * 86_400):
        return await valid(repository, links)


async def withdrawn(repository: Repository, links: LinkBuilder) -> str:
    await set_consent(repository, "cust-1001", ConsentAction.WITHDRAWN)
    return await valid(repository, links)


async def revoked(repository: Repository, links: LinkBuilder) -> str:
    token = await valid(repository, links)
    await repository.bump_generation("cust-1001")
    return token


async def unknown_campaign(repository: Repository, links: LinkBuilder) -> str:
    signer = LinkSigner([SECRET], 10**8)
    return signer.sign(TokenPurpose.FORM, LinkClaims("cust-1001", "no-such-campaign", 0))


LINKS: dict[str, Link] = {
    "valid": valid,
    "forged": forged,
    "expired": expired,
    "withdrawn": withdrawn,
    "revoked": revoked,
    "unknown campaign": unknown_campaign,
}


@pytest.mark.parametrize("case", LINKS)
@pytest.mark.parametrize("origin", [None, ALLOWED_ORIGIN, "https://evil.example"])
async def test_the_widget_answers_alike(
    pair: Pair, repository: Repository, links: LinkBuilder, case: str, origin: str | None
) -> None:
    token = await LINKS[case](repository, links)
    headers = {"Origin": origin} if origin else {}
    answer = await assert_same(pair, f"{API_PATH}?t={token}", headers)
    assert answer.status_code == 200
    assert answer.json()["prefilled"] is (case == "valid" and origin != "https://evil.example")


@pytest.mark.parametrize(
    "query",
    ["", "?t=", "?t", "?x=1", "?t=a&t=b", "?t=%ff%00", "?T=abc", "?t=a+b;c", "?t=" + "A" * 5000],
)
async def test_the_widget_reads_odd_queries_alike(pair: Pair, query: str) -> None:
    assert (await assert_same(pair, API_PATH + query)).status_code == 200


async def test_a_repeated_token_is_read_alike(
    pair: Pair, repository: Repository, links: LinkBuilder
) -> None:
    token = await valid(repository, links)
    # Litestar takes the last of repeated values; so must the fast route.
    answer = await assert_same(pair, f"{API_PATH}?t=junk&t={token}")
    assert answer.json()["prefilled"] is True


async def csrf_cookie(pair: Pair) -> dict[str, str]:
    """A CSRF cookie both apps accept (their secret is the same settings' key)."""
    first = await pair.fast.get(FORM_PATH)
    pair.fast.cookies.clear()
    return {"Cookie": f"prefill_csrf={first.cookies['prefill_csrf']}"}


@pytest.mark.parametrize("case", LINKS)
async def test_the_form_page_answers_alike(
    pair: Pair, repository: Repository, links: LinkBuilder, case: str
) -> None:
    token = await LINKS[case](repository, links)
    page = await assert_same(pair, f"{FORM_PATH}?t={token}", await csrf_cookie(pair))
    assert page.status_code == 200
    assert ("Matti" in page.text) is (case == "valid")
    assert 'name="_csrf_token"' in page.text


@pytest.mark.parametrize("query", ["", "?t=", "?t=a&t=b", "?t=%ff%00", "?lang=sv"])
@pytest.mark.parametrize("language", ["fi", "sv-SE,sv;q=0.9", "de"])
async def test_the_empty_form_page_answers_alike(pair: Pair, query: str, language: str) -> None:
    headers = await csrf_cookie(pair) | {"Accept-Language": language}
    assert (await assert_same(pair, FORM_PATH + query, headers)).status_code == 200
    assert (await assert_same(pair, "/f/no-such-form" + query, headers)).status_code == 404


async def test_a_new_visitor_gets_a_csrf_cookie_alike(pair: Pair) -> None:
    """Without a cookie each app makes a token of its own: the same answer but for it."""
    fast = await pair.fast.get(FORM_PATH, headers=REQUEST_ID)
    litestar = await pair.litestar.get(FORM_PATH, headers=REQUEST_ID)
    tokens = (fast.cookies["prefill_csrf"], litestar.cookies["prefill_csrf"])
    assert tokens[0] != tokens[1]

    def masked(response: Response, token: str) -> tuple[object, ...]:
        status, headers, body = as_sent(response)
        as_text = [(name, value.replace(token.encode(), b"TOKEN")) for name, value in headers]
        return status, as_text, body.replace(token.encode(), b"TOKEN")

    assert masked(fast, tokens[0]) == masked(litestar, tokens[1])
    assert tokens[0].encode() in fast.content


async def test_unknown_forms_and_health_alike(pair: Pair) -> None:
    assert (await assert_same(pair, "/api/v1/forms/no-such-form/prefill?t=x")).status_code == 404
    assert (await assert_same(pair, "/health/live")).status_code == 200


@contextlib.asynccontextmanager
async def pair_for(settings: Settings) -> AsyncIterator[Pair]:
    async with (
        AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as fast,
        AsyncTestClient(
            app=create_app(settings, fast_routes=False), base_url=PUBLIC_URL
        ) as litestar,
    ):
        yield Pair(fast, litestar)


async def test_the_layers_below_the_request_layer_still_run(redis_url: str, examples: None) -> None:
    settings = make_settings(redis_url, admin_port=8081, allowed_hosts=["testserver.local"])
    async with pair_for(settings) as pair:
        cookie = await csrf_cookie(pair)
        for url in (f"{API_PATH}?t=x", "/health/live", FORM_PATH):
            assert (await assert_same(pair, url, cookie)).status_code == 200
            bad_host = cookie | {"Host": "evil.example"}
            assert (await assert_same(pair, url, bad_host)).status_code == 400
        # The admin port's layer: the widget is not answered on the admin port.
        on_admin_port = pair.fast.base_url.copy_with(port=8081)
        assert (await pair.fast.get(on_admin_port.join(API_PATH))).status_code == 404


async def test_a_redis_outage_is_answered_alike(own_redis: EmbeddedRedis) -> None:
    settings = make_settings(own_redis.url)
    client = connect(own_redis.url, timeout_seconds=0.5, retries=0)
    repository = Repository(client, PSEUDONYMS)
    await import_directory(repository, EXAMPLES)
    links = LinkBuilder(LinkSigner(settings.secret_keys, settings.max_link_age_seconds), "")
    token = await valid(repository, links)
    await client.aclose()
    async with pair_for(settings) as pair:
        assert (await assert_same(pair, f"{API_PATH}?t={token}")).json()["prefilled"] is True
        own_redis.stop()
        down = await assert_same(pair, f"{API_PATH}?t={token}")
        assert down.status_code == 503
        assert down.headers["retry-after"] == "5"
        cookie = await csrf_cookie(pair)
        page = await assert_same(pair, f"{FORM_PATH}?t={token}", cookie)
        assert page.status_code == 503
        assert 'name="first_name"' in page.text
        assert "Matti" not in page.text
        assert (await assert_same(pair, "/health/live")).status_code == 200


async def test_a_fast_route_never_skips_a_guard() -> None:
    """Guards and hooks run in Litestar's handling, which a fast route skips: refused."""

    def deny(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        raise PermissionDeniedException()

    async def fast(scope: Scope, receive: Receive, send: Send) -> None:
        await Answer(b"{}", [])(scope, receive, send)

    @get("/guarded", opt={FAST_ROUTE: fast}, guards=[deny], sync_to_thread=False)
    def guarded() -> Answer:
        return Answer(b"{}", [])

    app = Litestar([guarded], middleware=[RequestMiddleware])
    routes = [r for r in app.routes if isinstance(r, HTTPRoute)]
    [registered] = [h for r in routes for h in r.route_handlers if FAST_ROUTE in h.opt]
    with pytest.raises(NotImplementedError, match="guards or hooks"):
        fast_stack(app, registered, RequestMiddleware)
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/guarded")).status_code == 500  # never the fast answer


async def answered_alike(pair: Pair, method: str, url: str, headers: dict[str, str]) -> int:
    sent = REQUEST_ID | headers
    fast = await pair.fast.request(method, url, headers=sent)
    litestar = await pair.litestar.request(method, url, headers=sent)
    assert allow_sorted(as_sent(fast)) == allow_sorted(as_sent(litestar))
    return fast.status_code


def allow_sorted(sent: tuple[int, list[tuple[bytes, bytes]], bytes]) -> object:
    """A 405's `Allow` lists the route's methods from a set: in any order."""
    status, headers, body = sent
    methods = [
        (n, b", ".join(sorted(v.split(b", ")))) if n == b"allow" else (n, v) for n, v in headers
    ]
    return status, methods, body


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "OPTIONS", "DELETE"])
@pytest.mark.parametrize(
    "path",
    [API_PATH, API_PATH + "/", "/" + API_PATH, "/health/live", "/health/live/", "/health//live"],
)
async def test_the_fast_door_answers_other_methods_and_paths_alike(
    pair: Pair, method: str, path: str
) -> None:
    """The door (web/fast.py) takes what the router would send to a fast route, and leaves
    the rest (other methods, a path the router normalises) to Litestar: answered alike."""
    status = await answered_alike(pair, method, f"{path}?t=x", await csrf_cookie(pair))
    assert status in (200, 204, 404, 405)


@pytest.mark.parametrize(("host", "status"), [("exa mple.com", 400), ("a/b", 400), ("", 200)])
async def test_a_host_header_is_judged_alike(pair: Pair, host: str, status: int) -> None:
    """Litestar's router refuses a malformed Host header (400); the door leaves it to it."""
    cookie = await csrf_cookie(pair)
    for url in (f"{API_PATH}?t=x", "/health/live", FORM_PATH):
        assert await answered_alike(pair, "GET", url, cookie | {"Host": host}) == status


async def test_the_fast_door_answers_only_fast_routes(settings: Settings, examples: None) -> None:
    """Fast routes are answered by the door, every other request by Litestar's own handler
    (here a stand-in that answers 418 and says what it saw)."""
    app = create_app(settings)
    door = app.asgi_handler
    assert isinstance(door, FastDoor)
    seen: list[str] = []

    async def litestar_handler(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["path"])
        await Answer(b"", [], status_code=418)(scope, receive, send)

    door._litestar = litestar_handler  # type: ignore[assignment]
    async with AsyncTestClient(app=app, base_url=PUBLIC_URL) as client:
        assert (await client.get(f"{API_PATH}?t=x")).status_code == 200
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/health/ready")).status_code == 418
        assert (await client.post(f"{API_PATH}?t=x")).status_code == 418
    assert seen == ["/health/ready", API_PATH]
