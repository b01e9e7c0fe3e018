"""The CLI's start-up: a bulk command loads what it uses, not the admin commands or the web app
(their imports were a fifth of a 50,000-row mint's time)."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from prefill import cli_admin
from prefill.cli import main

NOT_FOR_BULK = ("prefill.admin", "prefill.cli_admin", "prefill.app", "litestar")


def modules_after(*args: str) -> set[str]:
    """The modules a fresh interpreter holds after `prefill <args>` (its --help: no Redis)."""
    code = (
        "import json, sys\n"
        "from prefill.cli import main\n"
        "try:\n"
        f"    main({list(args)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    ("command", "unused"),
    [
        (("mint", "--help"), (*NOT_FOR_BULK, "prefill.imports", "phonenumbers", "jinja2")),
        (("import", "customers", "--help"), NOT_FOR_BULK),
    ],
)
def test_a_bulk_command_loads_only_what_it_uses(
    command: tuple[str, ...], unused: tuple[str, ...]
) -> None:
    loaded = modules_after(*command)
    assert "prefill.store" in loaded  # the command itself is there
    assert not {name for name in unused if name in loaded}


def test_every_command_is_listed_and_loads() -> None:
    assert {"prefill.cli_admin", "prefill.cli_mint"} <= modules_after("--help")
    assert "prefill.cli_bulk" in modules_after("import", "--help")


def test_every_admin_command_is_one_of_the_cli_s() -> None:
    """cli.ADMIN_COMMANDS names them (loaded when run): one added to cli_admin.py alone
    would not be reachable."""
    commands = [c for c in vars(cli_admin).values() if isinstance(c, click.Command)]
    nested = {
        id(sub) for c in commands if isinstance(c, click.Group) for sub in c.commands.values()
    }
    defined = {str(c.name): c for c in commands if id(c) not in nested}
    context = click.Context(main)
    assert defined
    assert {name: main.get_command(context, name) for name in defined} == defined
