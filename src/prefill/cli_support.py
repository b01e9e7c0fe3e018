"""What every `prefill` command shares: settings, the Redis it talks to, common options."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import getpass
import importlib
import os
import re
import secrets
import stat
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit, urlunsplit

import click

from prefill.import_rows import ImportRejected
from prefill.models import ID_PATTERN, Actor
from prefill.pseudonyms import Pseudonymizer
from prefill.settings import FILE_SUFFIX, Settings, SettingsError, load_or_create_secret
from prefill.storage import DataDirInUse, EmbeddedRedis, EmbeddedRedisError
from prefill.store import Repository, StoreUnavailable
from prefill.store.client import connect
from prefill.store.errors import unavailable_on_error

T = TypeVar("T")
CLI_REDIS_TIMEOUT_SECONDS = 60.0


def default_data_dir() -> Path:
    return Path(os.environ.get("PREFILL_DATA_DIR", "prefill-data"))


class RedisOptions(NamedTuple):
    """`prefill --redis-url URL --redis-cluster <command>`: the environment's Redis settings,
    given on the command line (None: not given)."""

    url: str | None
    cluster: bool | None


def load_settings(
    data_dir: Path | None = None, *, signs_links: bool = False, **overrides: object
) -> Settings:
    """Settings from the environment and `prefill`'s Redis options. Without
    PREFILL_SECRET_KEYS, the demo's key in the data directory is used; a command that signs
    nothing gets a throwaway key."""
    path = data_dir or default_data_dir()
    overrides["data_dir"] = str(path)
    context = click.get_current_context(silent=True)
    redis = context.find_object(RedisOptions) if context else None
    if redis is not None and redis.url is not None:
        overrides["redis_url"] = redis.url
    if redis is not None and redis.cluster is not None:
        overrides["redis_cluster"] = redis.cluster
    keys_given = any(os.environ.get(f"PREFILL_SECRET_KEYS{s}") for s in ("", FILE_SUFFIX))
    if not keys_given and "secret_keys" not in overrides:
        if (path / "secret_key").exists():
            overrides["secret_keys"] = [load_or_create_secret(path)]
        elif not signs_links:
            overrides["secret_keys"] = [secrets.token_urlsafe(48)]
    try:
        return Settings.from_env(**overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


@contextlib.contextmanager
def redis_url_for(settings: Settings) -> Iterator[str]:
    """The configured Redis, or the embedded one started for the duration of a command."""
    if settings.redis_url is not None:
        yield settings.redis_url
        return
    server = EmbeddedRedis(settings.data_path / "redis")
    try:
        server.start()
    except DataDirInUse as exc:
        if exc.url is None:
            # The owner's server is there but does not answer: frozen, loading or stopping.
            raise click.ClickException(
                f"cannot reach the embedded Redis: {exc}, and its Redis does not answer "
                "(stopped, frozen or still loading); try again once it answers"
            ) from exc
        yield exc.url  # A running demo or serve owns it: share its server.
        return
    except EmbeddedRedisError as exc:
        raise click.ClickException(f"cannot start the embedded Redis: {exc}") from exc
    try:
        yield server.url
    finally:
        server.stop()


def run_with_repository(
    settings: Settings, action: Callable[[Repository], Awaitable[T]], *, writes: bool = True
) -> T:
    """`action` on the configured Redis. `writes`: whether a lost Redis can leave it partly
    done (a read-only command, or one that only audits its read, is simply not done)."""
    reached = False

    async def run(url: str) -> T:
        nonlocal reached
        # A person at a terminal can wait for a large pipeline; a web request cannot.
        timeout = max(settings.redis_timeout_seconds, CLI_REDIS_TIMEOUT_SECONDS)
        client = connect(url, timeout, 0, settings.redis_cluster)
        try:
            async with unavailable_on_error():
                await client.ping()
            reached = True
            return await action(
                Repository(
                    client, Pseudonymizer(settings.secret_keys), settings.audit_retention_days
                )
            )
        finally:
            await client.aclose()

    with redis_url_for(settings) as url:
        try:
            return asyncio.run(run(url))
        except StoreUnavailable as exc:
            raise click.ClickException(unavailable_message(url, exc, reached, writes)) from exc


BULK_GC_THRESHOLD = 10_000
"""Allocations between two passes of the cyclic collector's youngest generation during a bulk
command (Python's default: 700)."""


@contextlib.contextmanager
def collector_for_bulk() -> Iterator[None]:
    """The cyclic garbage collector set for a bulk command, and put back as it was after it
    (tests run the commands in-process). A bulk command allocates a few objects a row, which
    reference counting frees; the collector's passes over them, and over everything loaded at
    start-up in each full pass, were about a sixth of a mint's CPU time. What is loaded by
    then is frozen (never scanned again) and the youngest generation is collected less
    often: cycles are still collected, so memory stays bounded. A process that had frozen
    objects already keeps all of them frozen (gc cannot unfreeze only some)."""
    threshold = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(BULK_GC_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if not frozen_before:
            gc.unfreeze()


def unavailable_message(url: str, exc: StoreUnavailable, reached: bool, writes: bool) -> str:
    where = f"Redis at {without_password(url)} ({exc.failure()})"
    if not reached:
        return f"cannot reach {where}; nothing was done"
    if not writes:
        return f"lost {where} during the command; nothing was changed, try again"
    return (
        f"lost {where} during the command; it may be partly done. Imports and "
        "revocations are safe to run again."
    )


def without_password(url: str) -> str:
    """`url` as it may be shown: its password (and a user name with it) replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the embedded Redis keeps its data (default: $PREFILL_DATA_DIR or ./prefill-data).",
)


class ExistingPath(click.Path):
    """A file (or, with `file_okay=False`, a folder) that must be there: every command says a
    missing one the same way, "PATH: no such file"."""

    def __init__(self, **options: Any) -> None:
        super().__init__(exists=False, **options)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not (self.allow_dash and value == "-"):
            kind = "file" if self.file_okay else "folder"
            try:
                is_folder = stat.S_ISDIR(os.stat(value).st_mode)
            except OSError:
                self.fail(f"{os.fsdecode(value)}: no such {kind}", param, ctx)
            if is_folder != (kind == "folder"):
                self.fail(f"{os.fsdecode(value)}: not a {kind}", param, ctx)
        return super().convert(value, param, ctx)


def require_id(value: str) -> None:
    """Ids become parts of Redis keys: refuse anything else before touching Redis."""
    if not re.fullmatch(ID_PATTERN, value):
        raise click.ClickException(
            f"{value!r} is not an id: use letters, digits, '_', '.' and '-' (at most 64)"
        )


def cli_actor() -> Actor:
    """The operator at the shell, as the audit and consent evidence name them."""
    return Actor(name=f"cli:{getpass.getuser()}")


class LazyGroup(click.Group):
    """A command group whose commands from other modules are imported only when run or listed:
    `prefill mint` need not load the admin commands, the import's parsers or the web app (their
    imports were a fifth of a bulk command's time). Click's documented lazy-loading pattern."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        """`lazy`: command name -> "module:attribute" of the command."""
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = self.lazy[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


def report_rejected(exc: ImportRejected) -> click.ClickException:
    for problem in exc.problems:
        click.echo(f"{exc.source}: {problem}", err=True)
    return click.ClickException(str(exc))
