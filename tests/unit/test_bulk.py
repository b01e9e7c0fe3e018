"""The pure parts of bulk import and minting: rows, normalisation, skip reasons, progress."""

from __future__ import annotations

import io
from collections.abc import Iterator

from prefill.customer_import import CustomerRow, ExportFormat, customer_row, read_customers
from prefill.import_rows import Problem
from prefill.minting import (
    URL_COLUMNS,
    SkipReason,
    Wanted,
    mint_columns,
    output_rows,
    skip_reason,
)
from prefill.models import (
    DEFAULT_LOCALE,
    Campaign,
    Catalog,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    ContactPerson,
    Customer,
    Form,
)
from prefill.progress import Progress, status_line
from prefill.store import CustomerState, Tombstone


def test_rows_are_read_one_at_a_time() -> None:
    """The reader never needs the whole file: it yields the first row of an endless export."""

    def endless() -> Iterator[str]:
        yield "id,email\n"
        n = 0
        while True:
            n += 1
            yield f"c{n},c{n}@x.example\n"

    rows = read_customers(endless(), ExportFormat.CSV, "endless")
    first, second = next(rows), next(rows)
    assert isinstance(first, CustomerRow)
    assert isinstance(second, CustomerRow)
    assert (first.line, second.customer.id) == (2, "c2")


def test_values_are_normalised() -> None:
    row = customer_row(
        7,
        {
            "id": "c1",
            "email": "  Matti.K@Lampo.EXAMPLE ",
            "phone": "040 555 1001",
            "locale": "sv_FI",
            "consent_email_marketing": "Withdrawn",
            "attr_tier": "gold",
        },
        {"email_marketing": "em-1"},
    )
    assert isinstance(row, CustomerRow)
    assert row.customer.email == "matti.k@lampo.example"
    assert row.customer.phone == "+358405551001"
    assert row.customer.locale == "sv"
    assert row.customer.attributes == {"tier": "gold"}
    assert row.consents == {"email_marketing": ConsentAction.WITHDRAWN}
    swedish = customer_row(
        8, {"id": "c2", "email": "a@x.example", "phone": "070-123 45 67"}, None, "SE"
    )
    assert isinstance(swedish, CustomerRow)
    assert swedish.customer.phone == "+46701234567"
    # Excel stores +46701234567 as a number and saves it without the '+'.
    saved = customer_row(9, {"id": "c3", "email": "a@x.example", "phone": "46701234567"})
    assert isinstance(saved, CustomerRow)
    assert saved.customer.phone == "+46701234567"
    unknown = customer_row(10, {"id": "c4", "email": "a@x.example", "phone": "999123"})
    assert isinstance(unknown, Problem)
    # No language is English, the default (README: "Normalised values").
    unsaid = customer_row(11, {"id": "c5", "email": "a@x.example", "locale": " "})
    assert isinstance(unsaid, CustomerRow)
    assert unsaid.customer.locale == DEFAULT_LOCALE == "en"


def test_a_row_is_refused_with_the_field_and_never_its_value() -> None:
    bad = customer_row(3, {"id": "c1", "email": "a@x.example", "phone": "555-SECRET-1"})
    assert bad == Problem(
        3, "phone: not a valid phone number (give it with a country code)", key="c1"
    )
    for given in ("+44 7911 638226", "0044 7911 638226"):  # a country code, and still wrong
        bad = customer_row(3, {"id": "c1", "email": "a@x.example", "phone": given})
        assert bad == Problem(3, "phone: not a valid phone number", key="c1")
    assert customer_row(
        4, {"id": "c1", "email": "a@x.example", "consent_personalization": "granted"}, {}
    ) == Problem(
        4,
        "consent_personalization: say which consent notice the customers agreed to, with "
        "--notice-version personalization=VERSION",
        "c1",
    )


def _catalog(fallback: str | None) -> tuple[Campaign, Catalog]:
    form = Form(id="f", title={"en": "F"}, fields=[], fallback_contact_id=fallback)
    campaign = Campaign(id="c", form_id="f")
    contacts = {
        "left": ContactPerson(id="left", name="L", title={}, email="l@x.example", active=False),
        "team": ContactPerson(id="team", name="T", title={}, email="t@x.example", kind="team"),
    }
    return campaign, Catalog(
        version=1, forms={"f": form}, campaigns={"c": campaign}, contacts=contacts
    )


def test_skip_reasons() -> None:
    granted = {
        "email_marketing": ConsentEvent(
            purpose="email_marketing",
            action=ConsentAction.GRANTED,
            at=0,
            source=ConsentSource.ADMIN,
        )
    }
    orphan = Customer(id="x", email="x@x.example", owner_id="left")
    campaign, without_fallback = _catalog(None)
    _, with_fallback = _catalog("team")
    erased = Tombstone(erased_at=0, generation_floor=1, withdrawn=[], pseudonym="p")
    cases = [
        (CustomerState(None, {}), without_fallback, SkipReason.UNKNOWN),
        (CustomerState(None, {}, erased), without_fallback, SkipReason.ERASED),
        (CustomerState(orphan, {}), with_fallback, SkipReason.NO_CONSENT),
        (CustomerState(orphan, granted), without_fallback, SkipReason.NO_CONTACT),
        (CustomerState(orphan, granted), with_fallback, None),
    ]
    for state, catalog, expected in cases:
        assert skip_reason(state, campaign, catalog, "email_marketing") == expected


def test_the_status_line() -> None:
    assert status_line("import x", 450_000, 0.45, 10.0, bar=True) == (
        "import x [###########-------------]  45% 450,000 rows 45,000 rows/s ETA 0:00:12"
    )
    assert status_line("mint c", 1_000, None, 2.0, bar=False) == (
        "mint c 1,000 rows 500 rows/s in 0:00:02"
    )


class FakeTerminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_progress_prints_a_plain_line_every_interval_when_not_at_a_terminal() -> None:
    now = [0.0]
    out = FakeTerminal(tty=False)
    progress = Progress("import x", out, lambda: now[0] / 40, clock=lambda: now[0])
    for second in range(1, 31):
        now[0] = float(second)
        progress.update(second * 1000)
    progress.finish()
    lines = out.getvalue().splitlines()
    assert lines == [
        "import x  25% 10,000 rows 1,000 rows/s ETA 0:00:30",
        "import x  50% 20,000 rows 1,000 rows/s ETA 0:00:20",
        "import x  75% 30,000 rows 1,000 rows/s ETA 0:00:10",
        "import x 100% 30,000 rows 1,000 rows/s in 0:00:30",
    ]


def test_progress_redraws_one_line_at_a_terminal() -> None:
    now = [0.0]
    out = FakeTerminal(tty=True)
    progress = Progress("import x", out, lambda: 0.5, clock=lambda: now[0])
    now[0] = 1.0
    progress.update(10)
    progress.finish()
    assert out.getvalue().count("\r") == 2
    assert out.getvalue().endswith("\x1b[K\n")
    assert "[" + "#" * 12 + "-" * 12 + "]" in out.getvalue()


def test_a_note_at_a_terminal_clears_the_bar_and_draws_it_again() -> None:
    now = [0.0]
    out = FakeTerminal(tty=True)
    progress = Progress("import x", out, lambda: 0.5, clock=lambda: now[0])
    now[0] = 1.0
    progress.update(10)
    progress.note("x.csv: line 3: email: not a valid email address")
    lines = out.getvalue().split("\n")
    assert lines[0].endswith("\r\x1b[Kx.csv: line 3: email: not a valid email address")
    assert lines[1].startswith("\rimport x [")


def test_a_segment_s_rows_have_the_cells_its_columns_name() -> None:
    """A segment's rows are made without a mapping (output_rows): cell by cell, they are what
    the columns name, as an input's rows are."""
    customer = Customer(id="c1", email="a@x.example", first_name="A", last_name="B", locale="sv")
    links = {name: f"https://x.example/{name}" for name in reversed(URL_COLUMNS)}
    row = output_rows([])(Wanted(2, "c1"), customer, links)
    cells = dict(zip(mint_columns([]), row, strict=True))
    assert cells == {
        "customer_id": "c1",
        "email": "a@x.example",
        "first_name": "A",
        "last_name": "B",
        "locale": "sv",
        **links,
    }
    as_input = output_rows(["customer_id"])(Wanted(2, "c1", {"customer_id": "c1"}), customer, links)
    assert list(cells.values()) == as_input
