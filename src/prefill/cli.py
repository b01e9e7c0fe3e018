"""The `prefill` command: serve, demo, import, mint, and revocation for operators.

Settings come from `PREFILL_*` environment variables (see settings.py); options override them.
Without `PREFILL_REDIS_URL`, commands use the embedded Redis in the data directory.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shlex
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import click
import msgspec

from prefill.cli_support import (
    ExistingPath,
    LazyGroup,
    RedisOptions,
    T,
    data_dir_option,
    default_data_dir,
    load_settings,
    report_rejected,
    require_id,
    run_with_repository,
)
from prefill.import_rows import ImportRejected
from prefill.links import LinkBuilder
from prefill.models import CampaignState, Catalog, Customer
from prefill.settings import Settings, load_or_create_secret
from prefill.storage import PID_NAME, DataDirInUse, EmbeddedRedis, EmbeddedRedisError
from prefill.store import Repository
from prefill.tokens import LinkClaims, LinkSigner

if TYPE_CHECKING:
    import uvicorn
    from litestar import Litestar

DEMO_ORGANIZATION = "Kaamos Instruments Oy"
DEMO_CAMPAIGN = "spring-summit-2027-invite"
DEMO_FEEDBACK_CAMPAIGN = "summit-feedback-2027"
"""The example feedback form's campaign: its links are printed beside the invitation's."""
DEMO_LANDING_URL = "http://127.0.0.1:8001/"
"""examples/landing served with `python3 -m http.server 8001 -d examples/landing`."""
WORKER_SETTINGS_ENV = "PREFILL_WORKER_SETTINGS"
"""The parent's whole Settings, JSON-encoded, for `--workers N` processes (set by the CLI)."""

workers_option = click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Processes to serve with; they share nothing but Redis.",
)


def examples_dir() -> Path:
    """examples/ from an installed wheel, else from the source checkout."""
    packaged = Path(__file__).parent / "examples"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "examples"


ADMIN_COMMANDS = ("keys", "consent", "export", "erase", "retention", "migrate", "docs")
"""cli_admin.py's commands, each its function's name there."""


# Commands from other modules are imported when run: a bulk command pays no start-up for the
# admin commands, the import's parsers (prefill.imports) or the web app, nor they for it.
@click.group(
    cls=LazyGroup,
    lazy={"mint": "prefill.cli_mint:mint"}
    | {name: f"prefill.cli_admin:{name}" for name in ADMIN_COMMANDS},
)
@click.option(
    "--redis-url",
    metavar="URL",
    default=None,
    help="The Redis every command uses, as PREFILL_REDIS_URL (which it overrides); without "
    "either, the embedded Redis in the data directory.",
)
@click.option(
    "--redis-cluster/--no-redis-cluster",
    default=None,
    help="The Redis URL names one node of a Redis Cluster, as PREFILL_REDIS_CLUSTER=1/0.",
)
@click.pass_context
def main(ctx: click.Context, redis_url: str | None, redis_cluster: bool | None) -> None:
    """prefill: signed email links that open prefilled, consent-gated forms."""
    ctx.obj = RedisOptions(redis_url, redis_cluster)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--admin-port",
    type=int,
    default=None,
    help="Serve the admin API only on this port, and not on --port "
    "(default: $PREFILL_ADMIN_PORT; unset serves it under /admin on --port).",
)
@data_dir_option
@workers_option
def serve(
    host: str, port: int, admin_port: int | None, data_dir: Path | None, workers: int
) -> None:
    """Run the service with settings from PREFILL_* environment variables."""
    settings = load_settings(data_dir, signs_links=True, admin_port=admin_port)
    require_free_port(host, port, "--port")
    if settings.admin_port is not None:
        require_free_port(host, settings.admin_port, "--admin-port")
    run_server(settings, host, port, workers)


def require_free_port(host: str, port: int, option: str) -> None:
    """Refuse to start on a port something else listens on, before anything else is done: a
    busy port found by uvicorn only after start-up is a log line, not an answer."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind) as probe:
            # As uvicorn binds: a port whose last connections linger in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"port {port} on {host} is in use by another program: stop it, or choose "
                f"another port with {option}"
            ) from exc
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({option}): {exc.strerror or exc}"
        ) from exc


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def worker_app() -> Litestar:
    """The app of one `--workers` process, built in that process from the parent's settings."""
    from prefill.logs import configure_logging

    configure_logging()
    return serving_app(msgspec.json.decode(os.environ[WORKER_SETTINGS_ENV], type=Settings))


def serving_app(settings: Settings) -> Litestar:
    """The app as a server runs it for long: its start-up heap frozen (web/heap.py)."""
    from prefill.app import create_app
    from prefill.web.heap import freeze_start_up_heap

    app = create_app(settings)
    app.on_startup.append(freeze_start_up_heap)
    return app


def run_server(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal under the handler that
    # was there before it: make that an exit, so callers' `finally` blocks (which stop the
    # embedded Redis) still run.
    # Imported here: the web app, its server and its logging take most of the command's
    # start-up, which the bulk commands (import, mint) then pay for nothing.
    import uvicorn

    from prefill.logs import configure_logging

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    configure_logging()
    app = serving_app(settings)
    # No uvicorn access log: its lines carry query strings, and query strings carry tokens (the
    # app logs each request itself). No uvicorn log config: its lines go to the JSON handler.
    options: dict[str, Any] = {
        "host": host,
        "access_log": False,
        "log_config": None,
        "log_level": "info",
        "server_header": False,
        "proxy_headers": False,
    }
    if workers > 1:
        _run_workers(settings, port, workers, options)
        return
    if settings.admin_port is None:
        uvicorn.run(app, port=port, **options)
        return
    public = uvicorn.Server(uvicorn.Config(app, port=port, **options))
    # One app, two listeners: the lifespan (Redis) runs once, with the public server.
    admin = uvicorn.Server(uvicorn.Config(app, port=settings.admin_port, lifespan="off", **options))
    asyncio.run(_serve_both(public, admin))


def _run_workers(settings: Settings, port: int, workers: int, options: dict[str, Any]) -> None:
    import uvicorn

    if settings.admin_port is not None:
        # Two listeners per worker would need a supervisor of our own; keep uvicorn's.
        raise click.ClickException(
            "--workers above 1 serves the admin API on --port only: unset the admin port"
        )
    # Spawned workers import the app afresh: the settings (the demo's too) go through the
    # environment, and each worker opens its own Redis connections.
    os.environ[WORKER_SETTINGS_ENV] = msgspec.json.encode(settings).decode()
    uvicorn.run("prefill.cli:worker_app", factory=True, workers=workers, port=port, **options)


async def _serve_both(public: uvicorn.Server, admin: uvicorn.Server) -> None:
    public_task = asyncio.create_task(public.serve())
    while not public.started and not public_task.done():  # noqa: ASYNC110 (uvicorn has only a flag)
        await asyncio.sleep(0.05)  # The admin API needs the lifespan's Redis first.
    admin_task = asyncio.create_task(admin.serve())
    await asyncio.wait([public_task, admin_task], return_when=asyncio.FIRST_COMPLETED)
    public.should_exit = admin.should_exit = True  # Either stopping stops both.
    await asyncio.gather(public_task, admin_task)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@data_dir_option
@click.option(
    "--examples",
    "examples_path",
    type=ExistingPath(file_okay=False, path_type=Path),
    default=None,
    help="Folder with the example data (default: the bundled examples).",
)
@workers_option
def demo(
    host: str, port: int, data_dir: Path | None, examples_path: Path | None, workers: int
) -> None:
    """Start an embedded Redis, load the examples, print each customer's links and serve."""
    require_free_port(host, port, "--port")
    data_path = data_dir or default_data_dir()
    secret = load_or_create_secret(data_path)
    server = EmbeddedRedis(data_path / "redis")
    try:
        server.start()
    except DataDirInUse as exc:
        raise click.ClickException(
            f"another prefill demo or serve is running on {data_path}; stop it first, "
            "or give this one its own --data-dir"
        ) from exc
    except EmbeddedRedisError as exc:
        raise click.ClickException(f"cannot start the embedded Redis: {exc}") from exc
    try:
        settings = load_settings(
            data_path,
            secret_keys=[secret],
            redis_url=server.url,
            public_url=f"http://{host}:{port}",
            organization=DEMO_ORGANIZATION,
        )
        if settings.admin_port is not None:
            require_free_port(host, settings.admin_port, "PREFILL_ADMIN_PORT")
        folder = examples_path or examples_dir()

        async def load(repository: Repository) -> list[tuple[str, str, list[str]]]:
            from prefill.imports import import_directory

            await import_directory(repository, folder)
            return await demo_links(repository, settings, folder)

        try:
            rows = run_with_repository(settings, load)
        except ImportRejected as exc:
            raise report_rejected(exc) from exc
        print_demo_links(rows, server, settings.public_url)
        admin_url = settings.public_url
        if settings.admin_port is not None:  # The admin API, the dashboard's too, is only there.
            admin_url = f"http://{host}:{settings.admin_port}"
        print_demo_next_steps(folder / "landing", f"{admin_url}/admin/dashboard", data_path)
        server.supervise()
        run_server(settings, host, port, workers)
    finally:
        server.stop()


async def demo_links(
    repository: Repository, settings: Settings, folder: Path
) -> list[tuple[str, str, list[str]]]:
    """(name, consent note, [form, card, vcard URLs]) for every example customer."""
    from prefill.imports import parse_customers

    links = LinkBuilder(
        LinkSigner(settings.secret_keys, settings.max_link_age_seconds), settings.public_url
    )
    catalog = await repository.load_catalog()
    campaign = catalog.campaigns[DEMO_CAMPAIGN]
    form = catalog.forms[campaign.form_id]
    parsed = parse_customers((folder / "customers.csv").read_text(encoding="utf-8"))
    customers = await repository.get_customers(c.id for c in parsed.customers)
    consents = await repository.current_consents(customers)
    rows = []
    for customer_id, customer in customers.items():
        if customer is None:
            continue
        claims = LinkClaims(customer.id, campaign.id, customer.generation)
        granted = consents[customer_id].get(form.prefill_purpose)
        note = (
            f"{customer.locale}"
            if granted is not None and granted.action.value == "granted"
            else f"{customer.locale}, no consent: shows the empty form"
        )
        rows.append(
            (
                f"{customer.first_name} {customer.last_name}",
                note,
                [
                    links.form_url(claims, form.id),
                    links.card_url(claims),
                    links.vcard_url(claims),
                    *_feedback_url(links, catalog, customer),
                ],
            )
        )
    return rows


def _feedback_url(links: LinkBuilder, catalog: Catalog, customer: Customer) -> list[str]:
    """The customer's link to the example feedback form, if the examples have it."""
    campaign = catalog.campaigns.get(DEMO_FEEDBACK_CAMPAIGN)
    if campaign is None:
        return []
    claims = LinkClaims(customer.id, campaign.id, customer.generation)
    return [links.form_url(claims, campaign.form_id)]


def print_demo_links(
    rows: list[tuple[str, str, list[str]]], server: EmbeddedRedis, service_url: str
) -> None:
    click.echo("\nprefill demo: personal links for the example customers\n")
    # The example landing page loads the widget from the service its link names.
    landing = f"{DEMO_LANDING_URL}?{urlencode({'service': service_url})}"
    for name, note, (form_url, card_url, vcard_url, *feedback_url) in rows:
        click.echo(f"{name} ({note})")
        click.echo(f"  form:  {form_url}")
        click.echo(f"  card:  {card_url}")
        click.echo(f"  vCard: {vcard_url}")
        for url in feedback_url:
            click.echo(f"  feedback: {url}")
        # The example landing page; the token in the fragment never reaches its server.
        click.echo(f"  widget: {landing}#{urlsplit(form_url).query}\n")
    # The pid file, not the pid: a supervised restart gives the server a new pid.
    pid_file = shlex.quote(str(server.data_dir / PID_NAME))
    click.echo(
        f"Embedded Redis: {server.url} (pid {server.pid}). To see fail-closed, freeze it with\n"
        f"  kill -STOP $(cat {pid_file})   and resume with   kill -CONT $(cat {pid_file})\n"
        "or stop it: it is restarted automatically after 3 seconds, and prefill returns.\n"
    )


def print_demo_next_steps(landing_dir: Path, dashboard_url: str, data_path: Path) -> None:
    click.echo(
        "The widget: links need the example landing page served; from a second terminal:\n"
        f"  python3 -m http.server {urlsplit(DEMO_LANDING_URL).port} "
        f"-d {shlex.quote(str(landing_dir))}\n"
        f"The funnel dashboard: {dashboard_url} (any user; the password is an admin key with "
        "the read scope):\n"
        f"  prefill keys create dashboard --scope read --data-dir {shlex.quote(str(data_path))}\n"
    )


@main.group(
    name="import",
    cls=LazyGroup,
    lazy={"customers": "prefill.cli_bulk:import_customers_command"},
)
def import_group() -> None:
    """Import records from files. Customers: bad rows are listed and skipped, good ones kept;
    contacts, forms and campaigns: a file with a bad row is rejected whole."""


def _import(settings: Settings, action: Callable[[Repository], Awaitable[str]]) -> None:
    try:
        click.echo(run_with_repository(settings, action))
    except ImportRejected as exc:
        raise report_rejected(exc) from exc


@import_group.command(name="contacts")
@click.argument("file", type=ExistingPath(dir_okay=False, path_type=Path))
@click.option(
    "--photos",
    type=ExistingPath(file_okay=False, path_type=Path),
    default=None,
    help="Folder with the photo files (default: photos/ next to FILE).",
)
@data_dir_option
def import_contacts_command(file: Path, photos: Path | None, data_dir: Path | None) -> None:
    """Contact persons from a CSV (see examples/contacts.csv)."""
    from prefill.imports import parse_contacts

    contacts, photo_bytes = _parse_or_report(
        lambda: parse_contacts(
            file.read_text(encoding="utf-8"), photos or file.parent / "photos", str(file)
        )
    )

    async def action(repository: Repository) -> str:
        await repository.save_catalog(contacts=contacts, photos=photo_bytes)
        return f"imported {len(contacts)} contact person(s), {len(photo_bytes)} photo(s)"

    _import(load_settings(data_dir), action)


@import_group.command(name="forms")
@click.argument("file", type=ExistingPath(dir_okay=False, path_type=Path))
@data_dir_option
def import_forms_command(file: Path, data_dir: Path | None) -> None:
    """Forms from a JSON list (see examples/forms.json)."""
    from prefill.imports import notice_versions_of, parse_forms

    forms = _parse_or_report(lambda: parse_forms(file.read_bytes(), str(file)))

    async def action(repository: Repository) -> str:
        await repository.save_catalog(forms=forms)
        versions = ", ".join(f"{p}={v}" for p, v in notice_versions_of(forms).items())
        return f"imported {len(forms)} form(s); consent notices: {versions or 'none'}"

    _import(load_settings(data_dir), action)


@import_group.command(name="campaigns")
@click.argument("file", type=ExistingPath(dir_okay=False, path_type=Path))
@data_dir_option
def import_campaigns_command(file: Path, data_dir: Path | None) -> None:
    """Campaigns from a CSV (see examples/campaigns.csv)."""
    from prefill.imports import keep_revocations, parse_campaigns

    campaigns = _parse_or_report(
        lambda: parse_campaigns(file.read_text(encoding="utf-8"), str(file))
    )

    async def action(repository: Repository) -> str:
        catalog = await repository.load_catalog()
        unknown = sorted({c.form_id for c in campaigns} - set(catalog.forms))
        if unknown:
            raise click.ClickException(
                f"unknown form id(s): {', '.join(unknown)}; "
                "import the forms first. Nothing was imported."
            )
        await repository.upsert_campaigns(campaigns, keep_revocations)
        return f"imported {len(campaigns)} campaign(s)"

    _import(load_settings(data_dir), action)


@import_group.command(name="examples")
@click.argument("folder", type=ExistingPath(file_okay=False, path_type=Path), required=False)
@data_dir_option
def import_examples_command(folder: Path | None, data_dir: Path | None) -> None:
    """A whole examples-style folder (default: the bundled examples)."""
    from prefill.imports import import_directory

    async def action(repository: Repository) -> str:
        counts = await import_directory(repository, folder or examples_dir())
        return "imported " + ", ".join(f"{n} {kind}" for kind, n in counts.items())

    _import(load_settings(data_dir), action)


def _parse_or_report(parse: Callable[[], T]) -> T:
    try:
        return parse()
    except ImportRejected as exc:
        raise report_rejected(exc) from exc


@main.command(name="revoke-customer")
@click.argument("customer_id")
@data_dir_option
def revoke_customer(customer_id: str, data_dir: Path | None) -> None:
    """Kill every link issued to a customer so far (bumps the link generation)."""
    require_id(customer_id)
    settings = load_settings(data_dir, signs_links=True)
    generation = run_with_repository(settings, lambda repo: repo.bump_generation(customer_id))
    if generation is None:
        raise click.ClickException(f"no customer {customer_id!r}")
    click.echo(f"revoked all links of {customer_id}; new link generation {generation}")


@main.command(name="revoke-campaign")
@click.argument("campaign_id")
@data_dir_option
def revoke_campaign(campaign_id: str, data_dir: Path | None) -> None:
    """Kill every link of a campaign."""
    require_id(campaign_id)
    settings = load_settings(data_dir, signs_links=True)
    found = run_with_repository(
        settings, lambda repo: repo.set_campaign_state(campaign_id, CampaignState.REVOKED)
    )
    if not found:
        raise click.ClickException(f"no campaign {campaign_id!r}")
    click.echo(f"revoked campaign {campaign_id}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
