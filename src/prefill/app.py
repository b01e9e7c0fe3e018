"""The composition root: `create_app(settings)` wires settings, Redis, services and routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Litestar
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader, State
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from prefill import __version__
from prefill.admin import AdminService
from prefill.catalog import CatalogCache
from prefill.consent import MASK
from prefill.i18n import install_gettext, long_date, pick
from prefill.links import LinkBuilder
from prefill.models import SCALES
from prefill.phones import display_phone
from prefill.pseudonyms import Pseudonymizer
from prefill.qr import vcard_qr
from prefill.services import PrefillService
from prefill.settings import Settings
from prefill.storage import EmbeddedRedis, start_supervised
from prefill.store import Repository, StoreUnavailable
from prefill.store.client import connect
from prefill.tokens import LinkSigner
from prefill.web.admin import admin_router, only_admin_on_admin_port
from prefill.web.api import api_router
from prefill.web.csrf import csrf_config
from prefill.web.dashboard import dashboard_router
from prefill.web.deps import DEPENDENCIES
from prefill.web.errors import EXCEPTION_HANDLERS
from prefill.web.fast import FastDoor
from prefill.web.form_page import PersonalPages, chosen
from prefill.web.generic_page import GenericPages
from prefill.web.health import health_router
from prefill.web.metrics import MetricsController
from prefill.web.openapi_structs import StrictStructSchemaPlugin
from prefill.web.pages import pages_router
from prefill.web.requests import RequestMiddleware
from prefill.web.submit import event_calendar, submit_form, thanks
from prefill.web.unsubscribe import unsubscribe, unsubscribe_head, unsubscribe_page
from prefill.web.widget import widget_router

logger = logging.getLogger("prefill")

PACKAGE_DIR = Path(__file__).parent
STATIC_CACHE_SECONDS = 86_400
MAX_REQUEST_BODY_BYTES = 64 * 1024
"""Forms are small; anything larger is refused with 413 before it is read."""


AUTOCOMPLETE = {
    "first_name": "given-name",
    "last_name": "family-name",
    "email": "email",
    "phone": "tel",
    "company": "organization",
    "job_title": "organization-title",
}
"""HTML autocomplete tokens for customer attributes: browsers and screen readers use them."""


def template_engine(organization: str) -> JinjaTemplateEngine:
    environment = Environment(
        loader=FileSystemLoader(PACKAGE_DIR / "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # The templates ship with the package: compiled once below, never looked at again (Jinja
        # would otherwise stat every template and its parents on every render).
        auto_reload=False,
    )
    install_gettext(environment)
    environment.globals.update(
        pick=pick,
        long_date=long_date,
        vcard_qr=vcard_qr,
        organization=organization,
        autocomplete=AUTOCOMPLETE,
        mask=MASK,
        phone=display_phone,
        scales=SCALES,
        chosen=chosen,
    )
    for name in environment.list_templates(extensions=["html"]):
        environment.get_template(name)  # Compile now, not on the first customer's request.
    return JinjaTemplateEngine.from_environment(environment)


NAME_MAX = 255
"""Bytes in one file name on Linux file systems; a longer one makes open() fail (ENAMETOOLONG)."""


def only_file_names(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A path with a NUL byte or an overlong name can name no file: 404, before the file system
    raises on it (a 500)."""
    path: str = connection.scope["path"]
    if "\x00" in path or any(len(part.encode()) > NAME_MAX for part in path.split("/")):
        raise NotFoundException()


def create_app(settings: Settings, *, fast_routes: bool = True) -> Litestar:
    """A Litestar app for `settings`; Redis is connected (or started) in its lifespan.
    `fast_routes=False` answers the fast routes (web/fast.py) through Litestar's handlers too:
    the tests compare the two."""
    signer = LinkSigner(settings.secret_keys, settings.max_link_age_seconds)
    links = LinkBuilder(signer, settings.public_url)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        embedded: EmbeddedRedis | None = None
        if settings.redis_url is not None:
            url = settings.redis_url
        else:
            embedded = await asyncio.to_thread(start_supervised, settings.data_path / "redis")
            url = embedded.url
        client = connect(
            url, settings.redis_timeout_seconds, settings.redis_retries, settings.redis_cluster
        )
        repository = Repository(
            client, Pseudonymizer(settings.secret_keys), settings.audit_retention_days
        )
        catalog = CatalogCache(repository)
        app.state.repository = repository
        app.state.links = links
        limits = settings.rate_policy
        app.state.rate_policy = limits
        app.state.service = PrefillService(
            repository,
            signer,
            catalog,
            settings.organization,
            settings.scanner_window_seconds,
            limits,
        )
        app.state.admin = AdminService(
            repository, catalog, links, settings.customer_retention_days, limits
        )
        if problem := await repository.durability_problem():
            # Consent changes are answered as durable; with this configuration they are not.
            logger.warning("redis may lose acknowledged writes in a crash (%s)", problem)
        try:
            await catalog.current()
        except StoreUnavailable:
            # Start anyway and fail closed per request; the pool reconnects when Redis is back.
            logger.warning("redis unavailable at start-up; serving generic responses")
        try:
            yield
        finally:
            await client.aclose()
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    static_router = create_static_files_router(
        path="/static",
        directories=[PACKAGE_DIR / "static"],
        cache_control=CacheControlHeader(max_age=STATIC_CACHE_SECONDS, public=True),
        include_in_schema=False,
        guards=[only_file_names],
    )
    app = Litestar(
        route_handlers=[
            pages_router,
            unsubscribe_page,
            unsubscribe_head,
            unsubscribe,
            submit_form,
            thanks,
            event_calendar,
            api_router,
            health_router,
            static_router,
            widget_router,
            admin_router(),
            dashboard_router,
            MetricsController,
        ],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        template_config=TemplateConfig(instance=template_engine(settings.organization)),
        # For FormCSRF (web/csrf.py) and the empty form page rendered once (web/generic_page.py).
        state=State(
            {
                "csrf_config": csrf_config(settings),
                "generic_pages": GenericPages(),
                "personal_pages": PersonalPages(),
                "fast_routes": fast_routes,
            }
        ),
        allowed_hosts=AllowedHostsConfig(allowed_hosts=settings.allowed_hosts),
        request_max_body_size=MAX_REQUEST_BODY_BYTES,
        # Logging is the process's to configure (prefill.logs, from `prefill serve`); Litestar
        # adds no handlers and logs no exceptions (the handlers in web/errors.py log the type).
        logging_config=None,
        middleware=[
            RequestMiddleware,  # Outermost: its line and metrics cover the others' refusals.
            *only_admin_on_admin_port(settings.admin_port),
        ],
        lifespan=[lifespan],
        plugins=[StrictStructSchemaPlugin()],
        # The JSON document only: the HTML viewers Litestar offers load scripts and fonts from
        # CDNs, and no page of this service loads anything from a third party.
        openapi_config=OpenAPIConfig(
            title="prefill",
            version=__version__,
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="An admin API key (`prefill keys create`).",
                    )
                }
            ),
        ),
        debug=False,
    )
    if fast_routes:
        app.asgi_handler = FastDoor(app)  # (web/fast.py) past the router, to the fast routes
    return app
