"""The operator's admin commands: API keys, consent, export, erasure, retention, docs.

They call the same use cases as the admin API (admin.py), with `cli:<user>` as the actor.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

import click
import msgspec

from prefill.admin import AdminService, ConsentState, NotFound
from prefill.apikeys import Scope
from prefill.catalog import CatalogCache
from prefill.cli_support import (
    T,
    cli_actor,
    data_dir_option,
    load_settings,
    require_id,
    run_with_repository,
)
from prefill.links import LinkBuilder
from prefill.models import ConsentAction, ConsentEvent, ConsentSource
from prefill.purposes import consent_purposes, record_of_processing
from prefill.store import Repository, Tombstone
from prefill.tokens import LinkSigner


def run_admin(
    data_dir: Path | None, action: Callable[[AdminService], Awaitable[T]], *, writes: bool = True
) -> T:
    settings = load_settings(data_dir)
    links = LinkBuilder(
        LinkSigner(settings.secret_keys, settings.max_link_age_seconds), settings.public_url
    )

    async def with_service(repository: Repository) -> T:
        admin = AdminService(
            repository, CatalogCache(repository), links, settings.customer_retention_days
        )
        try:
            return await action(admin)
        except NotFound as exc:
            raise click.ClickException(str(exc)) from exc

    return run_with_repository(settings, with_service, writes=writes)


def _json(value: object) -> str:
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


# -- keys -------------------------------------------------------------------------------------


@click.group()
def keys() -> None:
    """Admin API keys: create, list, revoke."""


@keys.command(name="create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice([s.value for s in Scope]),
    help="Repeat for each scope the key needs.",
)
@data_dir_option
def create_key(name: str, scopes: tuple[str, ...], data_dir: Path | None) -> None:
    """Create a key; its secret is printed once and never stored."""
    new = run_admin(
        data_dir, lambda admin: admin.create_key(name, [Scope(s) for s in scopes], cli_actor())
    )
    click.echo(
        f"created key {new.key.id} ({name}) with scopes {', '.join(new.key.scopes)}", err=True
    )
    click.echo(
        "the secret is shown only now; send it as 'Authorization: Bearer <secret>':", err=True
    )
    click.echo(new.secret)


@keys.command(name="list")
@data_dir_option
def list_keys(data_dir: Path | None) -> None:
    """List keys (never their secrets)."""
    for key in run_admin(data_dir, lambda admin: admin.list_keys(), writes=False):
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(key.created_at))
        click.echo(f"{key.id}  {created} UTC  {','.join(key.scopes):<30}  {key.name}")


@keys.command(name="revoke")
@click.argument("key_id")
@data_dir_option
def revoke_key(key_id: str, data_dir: Path | None) -> None:
    """Revoke a key; it stops working at once."""
    run_admin(data_dir, lambda admin: admin.revoke_key(key_id, cli_actor()))
    click.echo(f"revoked key {key_id}")


# -- consent ----------------------------------------------------------------------------------


@click.group()
def consent() -> None:
    """A customer's consent: show, grant, withdraw."""


@consent.command(name="show")
@click.argument("customer_id")
@data_dir_option
def show_consent(customer_id: str, data_dir: Path | None) -> None:
    """Current consent per purpose, then the full history, oldest first; and whether the id was
    erased, with the withdrawals its erasure keeps."""
    require_id(customer_id)

    async def read(admin: AdminService) -> tuple[ConsentState | None, Tombstone | None]:
        erasure = await admin.erasure(customer_id)
        try:
            return await admin.read_consent(customer_id, cli_actor()), erasure
        except NotFound:
            if erasure is None:
                raise
            return None, erasure

    state, erasure = run_admin(data_dir, read, writes=False)
    if erasure is not None:
        click.echo(_erasure_line(erasure, recreated=state is not None))
    if state is None:
        return
    for purpose, event in sorted(state.current.items()):
        click.echo(f"{purpose}: {event.action.value}")
    click.echo("history:" if state.history else "history: none")
    for event in state.history:
        version = f" notice {event.notice_version}" if event.notice_version else ""
        click.echo(
            f"  {_utc(event.at)}  {event.purpose}  {event.action.value}  via {event.source.value}"
            f"{version}  by {event.actor or '-'}"
        )


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def _erasure_line(erasure: Tombstone, *, recreated: bool) -> str:
    withdrawn = ", ".join(erasure.withdrawn) or "none"
    if recreated:
        return (
            f"re-created over an erasure on {_utc(erasure.erased_at)}; withdrawn purposes carried "
            f"over (an import cannot grant them again): {withdrawn}"
        )
    return (
        f"erased on {_utc(erasure.erased_at)}; no record since. Withdrawn purposes kept under a "
        f"pseudonym: {withdrawn}"
    )


def _change(
    customer_id: str,
    purpose: str,
    action: ConsentAction,
    notice_version: str,
    note: str,
    data_dir: Path | None,
) -> None:
    require_id(customer_id)
    if purpose not in consent_purposes():
        raise click.BadParameter(
            f"{purpose!r} is not a consent purpose ({', '.join(consent_purposes())})",
            param_hint="PURPOSE",
        )
    actor = cli_actor()
    event = ConsentEvent(
        purpose=purpose,
        action=action,
        at=time.time(),
        source=ConsentSource.ADMIN,
        notice_version=notice_version,
        actor=f"{actor.name}: {note}" if note else actor.name,
    )
    outcome = run_admin(data_dir, lambda admin: admin.change_consent(customer_id, event))
    if outcome.status == "unchanged":
        click.echo(f"{customer_id}: {purpose} was already {action.value}; nothing recorded")
    else:
        click.echo(f"{customer_id}: {purpose} {action.value} (recorded, durable)")


note_option = click.option("--note", default="", help="How the customer asked (kept as evidence).")


@consent.command(name="grant")
@click.argument("customer_id")
@click.argument("purpose")
@click.option("--notice-version", required=True, help="The notice version the customer saw.")
@note_option
@data_dir_option
def grant(
    customer_id: str, purpose: str, notice_version: str, note: str, data_dir: Path | None
) -> None:
    """Record a grant on the customer's behalf."""
    _change(customer_id, purpose, ConsentAction.GRANTED, notice_version, note, data_dir)


@consent.command(name="withdraw")
@click.argument("customer_id")
@click.argument("purpose")
@note_option
@data_dir_option
def withdraw(customer_id: str, purpose: str, note: str, data_dir: Path | None) -> None:
    """Record a withdrawal on the customer's behalf."""
    _change(customer_id, purpose, ConsentAction.WITHDRAWN, "", note, data_dir)


# -- export, erasure, retention, docs ---------------------------------------------------------


@click.command(name="export")
@click.argument("customer_id")
@click.option("--output", type=click.File("w", encoding="utf-8"), default="-", show_default=True)
@data_dir_option
def export(customer_id: str, output: TextIO, data_dir: Path | None) -> None:
    """Everything held about one customer, as JSON (GDPR Art. 15)."""
    require_id(customer_id)
    result = run_admin(data_dir, lambda admin: admin.export(customer_id, cli_actor()), writes=False)
    output.write(_json(result) + "\n")
    if output.name != "<stdout>":  # Said where the person looks, not in the file.
        click.echo(f"wrote the export of {customer_id} to {output.name}", err=True)


@click.command(name="erase")
@click.argument("customer_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@data_dir_option
def erase(customer_id: str, yes: bool, data_dir: Path | None) -> None:
    """Erase a customer and kill all their links (GDPR Art. 17)."""
    require_id(customer_id)
    if not yes:
        click.confirm(f"Erase {customer_id} for good?", abort=True)
    receipt = run_admin(data_dir, lambda admin: admin.erase(customer_id, cli_actor()))
    withdrawn = ", ".join(receipt.kept.withdrawn) or "none"
    click.echo(f"erased {customer_id}; kept under a pseudonym: withdrawn purposes {withdrawn}")


@click.command(name="retention")
@data_dir_option
def retention(data_dir: Path | None) -> None:
    """Apply the retention rules now (run daily): erase stale customers, trim the streams."""
    report = run_admin(data_dir, lambda admin: admin.apply_retention(cli_actor()))
    click.echo(f"checked {report.checked} customer(s), erased {len(report.erased)}")
    for customer_id in report.erased:
        click.echo(f"  erased {customer_id}")


@click.command(name="migrate")
@data_dir_option
def migrate(data_dir: Path | None) -> None:
    """Move data stored under an earlier key layout (before buckets, or a customer in several
    keys) to the current one (once, with the service stopped; safe to run again, and to resume
    after an interruption)."""
    settings = load_settings(data_dir)

    def progress(line: str) -> None:
        click.echo(line, err=True)

    report = run_with_repository(settings, lambda repo: repo.migrate_old_schema(progress))
    click.echo(
        f"moved {report.customers} customer(s), {report.tombstones} tombstone(s), "
        f"{report.audit_entries} audit entries, {report.refusal_days} day(s) of refusal counts, "
        f"{report.funnels} funnel(s) into shards, {report.feed_entries} feed entries into shards; "
        f"made {report.one_hash} customer(s) one hash"
    )


@click.group()
def docs() -> None:
    """Documents generated from the code."""


@docs.command(name="record-of-processing")
@click.option("--output", type=click.File("w", encoding="utf-8"), default="-", show_default=True)
def record_of_processing_command(output: TextIO) -> None:
    """The record of processing activities (GDPR Art. 30), as Markdown."""
    output.write(record_of_processing())
