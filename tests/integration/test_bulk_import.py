"""`prefill import customers` against a real Redis: good rows kept, bad rows listed by line,
values normalised, a second run changes nothing, a dry run writes nothing."""

from __future__ import annotations

import asyncio
import csv
import gc
import gzip
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from prefill.customer_import import CustomerRow, import_customers
from prefill.import_rows import Problem
from prefill.models import Customer
from prefill.storage import free_tcp_port
from prefill.store import Repository, StoreUnavailable
from prefill.store.keys import customer_key
from tests.helpers import (
    AUDIT_SHARD,
    audit_shard_entries,
    run,
    stored_customer,
    stored_history,
)
from tests.topology import sync_client

VERSIONS = (
    "--notice-version",
    "personalization=pz-2026-01",
    "--notice-version",
    "email_marketing=em-2026-01",
)
HEADER = (
    "id,email,first_name,last_name,phone,company,job_title,locale,owner_id,"
    "consent_personalization,consent_email_marketing,attr_segment\n"
)


def good_row(n: int) -> str:
    consent = "granted" if n % 3 else "withdrawn"
    return (
        f"crm-{n:06d},First.Last{n}@Example.COM,First{n},Last{n},040 555 {n % 10000:04d},"
        f"Company {n} Oy,Engineer,{'sv-FI' if n % 2 else 'fi'},aino-virtanen,{consent},granted,"
        f"s{n % 5}\n"
    )


BROKEN = {
    # line in the file -> (the row, what the report must say)
    101: ("crm-bad1,not-an-email,A,B,,,,fi,,,,\n", "email: not a valid email address"),
    202: ("crm-bad2,b@x.example,A,B,12,,,fi,,,,\n", "phone: not a valid phone number"),
    303: ("crm-bad3,c@x.example,A,B,,,,de,,,,\n", "locale: not a supported language"),
    404: ("crm-bad4,d@x.example,A,B,,,,fi,,maybe,,\n", "consent_personalization: expected"),
    505: ("crm-bad5,e@x.example,A,B,,,,fi,,,,,surplus\n", "more values than columns"),
    606: ("crm-000002,dup@x.example,A,B,,,,fi,,,,\n", "duplicate id (first on line 3)"),
    707: ("bad id!,f@x.example,A,B,,,,fi,,,,\n", "id: use only letters"),
}


def export(path: Path, rows: int) -> Path:
    """`rows` good rows with the BROKEN ones at their lines (line 1 is the header)."""
    lines = [HEADER]
    n = 0
    while len(lines) < rows + len(BROKEN) + 1:
        line = len(lines) + 1
        if line in BROKEN:
            lines.append(BROKEN[line][0])
        else:
            n += 1
            lines.append(good_row(n))
    path.write_text("".join(lines), encoding="utf-8")
    return path


def snapshot(redis_url: str) -> dict[bytes, bytes | None]:
    """Every key's serialized value but the audit's (an import run is audited): equal snapshots
    mean no data was written."""
    with sync_client(redis_url) as client:
        keys = sorted(k for k in client.scan_iter(count=1000) if not AUDIT_SHARD.fullmatch(k))
        return {key: client.dump(key) for key in keys}


def test_a_crm_export_keeps_its_good_rows_lists_its_bad_ones_and_imports_once(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    assert run(env, "import", "examples")[0] == 0
    source = export(tmp_path / "crm.csv", 1200)
    report = tmp_path / "errors.csv"
    code, out, err = run(
        env, "import", "customers", str(source), *VERSIONS, "--errors", str(report)
    )
    assert code == 1
    assert "crm.csv: 1,207 rows: 1,200 created, 0 updated, 0 unchanged, 7 bad" in out
    assert "7 bad row(s) were skipped" in err
    assert "import crm.csv 100% 1,207 rows" in err  # the progress line (not a terminal here)
    for line, (_, reason) in BROKEN.items():
        assert f"crm.csv: line {line}" in err
        assert reason in err
    with report.open(encoding="utf-8") as handle:
        listed = list(csv.DictReader(handle))
    assert [int(r["line"]) for r in listed] == sorted(BROKEN)
    named = {r["line"]: r["customer_id"] for r in listed}
    assert (named["606"], named["505"], named["707"]) == ("crm-000002", "crm-bad5", "")
    assert all(BROKEN[int(r["line"])][1] in r["reason"] for r in listed)

    with sync_client(redis_url) as client:
        assert client.exists(customer_key("crm-bad1")) == 0
        record = stored_customer(client, "crm-000001")
        # One compact hash (store/records.py), not a hash table of separate strings.
        assert client.object("encoding", customer_key("crm-000001")) in (b"ziplist", b"listpack")
        assert record["email"] == "first.last1@example.com"
        assert record["phone"] == "+358405550001"
        assert record["locale"] == "sv"
        assert record["attributes"] == {"segment": "s1"}
        assert len(stored_history(client, "crm-000001")) == 2
    before = snapshot(redis_url)

    code, out, _ = run(env, "import", "customers", str(source), *VERSIONS, "--errors", str(report))
    assert code == 1
    assert "1,207 rows: 0 created, 0 updated, 1,200 unchanged, 7 bad; 0 consent changes" in out
    assert snapshot(redis_url) == before
    with sync_client(redis_url) as client:
        audited = audit_shard_entries(client)
    imports = [e for e in audited if b'"target":"file:crm.csv"' in e]
    assert len(imports) == 2
    assert all(b'"action":"customers.import","actor":"cli:' in e for e in imports)


def test_a_dry_run_says_what_would_change_and_writes_nothing(
    env: dict[str, str], redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where a report would go by default
    assert run(env, "import", "examples")[0] == 0
    changed = tmp_path / "changed.csv"
    changed.write_text(
        HEADER + "cust-1001,matti.korhonen@lampo.example,Matti,Korhonen,+358405551001,Uusi Oy,"
        "Laboratorioinsinööri,fi,aino-virtanen,granted,withdrawn,\n"
        + good_row(1)
        + "bad,not-an-email,,,,,,,,,,\n",
        encoding="utf-8",
    )
    before = snapshot(redis_url)
    code, out, err = run(env, "import", "customers", str(changed), *VERSIONS, "--dry-run")
    assert code == 1
    assert "line 2 (cust-1001): would be updated (company, attributes); consent: " in out
    assert "email_marketing withdrawn" in out
    assert "line 3 (crm-000001): would be created; consent: personalization granted" in out
    assert "(dry run, nothing written): 3 rows: 1 would be created, 1 would be updated" in out
    assert "line 4: email: not a valid email address" in err
    assert "dry run: 1 bad row(s) would be skipped" in err
    assert list(tmp_path.iterdir()) == [changed]  # no report either
    assert snapshot(redis_url) == before


def test_ndjson_and_gzip_exports_import_the_same_way(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    objects = [
        {
            "id": "nd-1",
            "email": " ND1@Example.com ",
            "first_name": "Ella",
            "phone": "+46 70 123 45 67",
            "locale": "SV",
            "consents": {"personalization": "granted"},
            "attributes": {"tier": "gold", "visits": 3},
        },
        {"id": "nd-2", "email": "nd2@example.com", "consent_email_marketing": "withdrawn"},
        ["not", "an", "object"],
        {"id": "nd-3", "email": "nd3@example.com", "nickname": "x"},
    ]
    text = "\n".join(json.dumps(o) for o in objects) + "\n\n{broken json\n"
    source = tmp_path / "crm.ndjson.gz"
    source.write_bytes(gzip.compress(text.encode()))
    report = tmp_path / "errors.csv"
    code, out, err = run(
        env, "import", "customers", str(source), *VERSIONS, "--errors", str(report)
    )
    assert code == 1
    assert "5 rows: 2 created, 0 updated, 0 unchanged, 3 bad; 2 consent changes" in out
    assert "line 3: expected a JSON object" in err
    assert "line 4: unknown column 'nickname'" in err
    assert "line 6: not valid JSON" in err
    with sync_client(redis_url) as client:
        record = stored_customer(client, "nd-1")
    assert (record["email"], record["phone"], record["locale"]) == (
        "nd1@example.com",
        "+46701234567",
        "sv",
    )
    assert record["attributes"] == {"tier": "gold", "visits": "3"}


def test_rows_not_in_the_given_encoding_are_bad_rows_not_the_end_of_the_file(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "latin1.csv"
    source.write_bytes(
        b"id,email,first_name\nc1,a@x.example,J\xe4rvi\nc2,b@x.example,Ok\n"  # \xe4: Latin-1
    )
    errors = str(tmp_path / "e")
    code, out, err = run(
        env, "import", "customers", str(source), "--encoding", "utf-8", "--errors", errors
    )
    assert code == 1
    assert "line 2: not valid in the file's encoding: save the export as UTF-8, or give " in err
    assert "2 rows: 1 created" in out


def test_a_row_cut_short_is_a_bad_row_as_one_too_long_is(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "crm.csv"
    source.write_text(
        "id,email,first_name,last_name,locale\n"
        "c1,a@x.example,A,B,fi\n"
        "c2,b@x.example,B,B\n"  # line 3: the locale's cell is missing
        "c3\n"  # line 4
        "\n"  # a blank line is no row
        "c5,e@x.example,E,E,sv,surplus\n"  # line 6
        'c6,"f@x.example","F",,\n',
        encoding="utf-8",
    )
    report = tmp_path / "errors.csv"
    code, out, err = run(env, "import", "customers", str(source), "--errors", str(report))
    assert code == 1
    assert "crm.csv: line 3: 4 values for 5 columns: is the row cut short?\n" in err
    assert "crm.csv: line 4: 1 value for 5 columns: is the row cut short?\n" in err
    assert "crm.csv: line 6: more values than columns\n" in err
    assert "5 rows: 2 created, 0 updated, 0 unchanged, 3 bad" in out
    with report.open(encoding="utf-8") as handle:
        assert [r["customer_id"] for r in csv.DictReader(handle)] == ["c2", "c3", "c5"]
    # NDJSON has no columns to count: a key left out is an empty field, as ever.
    ndjson = tmp_path / "crm.ndjson"
    ndjson.write_text('{"id": "c2", "email": "b@x.example"}\n', encoding="utf-8")
    code, out, err = run(env, "import", "customers", str(ndjson))
    assert code == 0, err
    assert "1 rows: 1 created" in out


def test_an_id_is_imported_from_its_first_good_row_and_only_later_rows_are_duplicates(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "crm.csv"
    rows = ["c1,not-an-email,Bad", "c1,a@x.example,Fixed", "c1,b@x.example,Again"]
    source.write_text("id,email,first_name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = run(env, "import", "customers", str(source), "--errors", str(tmp_path / "e"))
    assert code == 1
    assert "crm.csv: line 2: email: not a valid email address\n" in err
    assert "crm.csv: line 4: duplicate id (first on line 3)\n" in err
    assert "3 rows: 1 created, 0 updated, 0 unchanged, 2 bad" in out
    with sync_client(redis_url) as client:
        assert stored_customer(client, "c1")["first_name"] == "Fixed"


def test_a_header_that_cannot_work_imports_nothing(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "crm.csv"
    source.write_text("id,mail\nc1,a@x.example\n", encoding="utf-8")
    code, _, err = run(env, "import", "customers", str(source))
    assert code == 1
    assert "crm.csv: line 1: missing column(s): email" in err
    assert "nothing was imported" in err
    code, _, err = run(env, "import", "customers", str(tmp_path / "missing.csv"))
    assert code == 2
    assert "no such file" in err
    code, _, err = run(env, "import", "customers", str(source), "--phone-region", "XX")
    assert code == 2
    assert "'XX' is not a country code" in err
    assert snapshot(redis_url) == {}


def test_a_batch_without_one_good_row_is_reported_and_the_import_goes_on(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "crm.csv"
    bad = "".join(f"bad{n},not-an-email\n" for n in range(600))
    source.write_text("id,email\n" + bad + "good1,g@x.example\n", encoding="utf-8")
    report = tmp_path / "errors.csv"
    code, out, err = run(env, "import", "customers", str(source), "--errors", str(report))
    assert code == 1
    assert "601 rows: 1 created, 0 updated, 0 unchanged, 600 bad" in out
    assert "all 600 are listed in" in err
    assert "bad1" not in err  # the terminal (or a cron log) gets lines and reasons, no ids
    with report.open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 600
    # A clean run leaves no report of an earlier one behind.
    source.write_text("id,email\ngood1,g@x.example\n", encoding="utf-8")
    code, _, err = run(env, "import", "customers", str(source), "--errors", str(report))
    assert code == 0, err
    assert not report.exists()


def test_a_run_that_did_nothing_keeps_the_report_of_the_last_one_that_did(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "crm.csv"
    source.write_text("id,email\nc1,not-an-email\n", encoding="utf-8")
    report = tmp_path / "errors.csv"
    code, _, _ = run(env, "import", "customers", str(source), "--errors", str(report))
    assert code == 1
    listed = report.read_text(encoding="utf-8")
    assert "email: not a valid email address" in listed
    mail, consent = tmp_path / "mail.csv", tmp_path / "consent.csv"
    mail.write_text("id,mail\nc1,a@x.example\n", encoding="utf-8")
    consent.write_text(
        "id,email,consent_personalization\nc1,a@x.example,granted\n", encoding="utf-8"
    )
    nowhere = ("--redis-url", f"redis://127.0.0.1:{free_tcp_port()}/0", "--no-redis-cluster")
    refused = {  # what each run says -> its arguments
        "cannot reach Redis": (*nowhere, "import", "customers", str(source)),
        "missing column(s): email": ("import", "customers", str(mail)),
        "--notice-version personalization=VERSION": ("import", "customers", str(consent)),
    }
    for said, args in refused.items():
        code, _, err = run(env, *args, "--errors", str(report))
        assert code == 1
        assert said in err
        assert "removed" not in err
        assert report.read_text(encoding="utf-8") == listed
    source.write_text("id,email\nc1,a@x.example\n", encoding="utf-8")
    code, _, err = run(env, "import", "customers", str(source), "--errors", str(report))
    assert code == 0, err
    assert f"removed {report}, an earlier run's report" in err
    assert not report.exists()


def test_a_record_that_no_longer_decodes_is_a_bad_row_not_a_crash(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    with sync_client(redis_url) as client:
        client.hset(customer_key("c1"), mapping={"e": b"no email", "g": 0})
        client.set(customer_key("c3"), "a key of another type")
    source = tmp_path / "crm.csv"
    rows = "id,email\nc1,a@x.example\nc2,b@x.example\nc3,c@x.example\n"
    source.write_text(rows, encoding="utf-8")
    code, out, err = run(env, "import", "customers", str(source), "--errors", str(tmp_path / "e"))
    assert code == 1
    assert "line 2: the stored record of this id no longer decodes" in err
    assert "line 4: the stored record of this id no longer decodes" in err
    assert "3 rows: 1 created, 0 updated, 0 unchanged, 2 bad" in out


def test_files_that_cannot_be_read_or_written_get_a_clear_error(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "crm.csv"
    source.write_text("id,email\nc1,a@x.example\n", encoding="utf-8")
    nowhere = str(tmp_path / "no-such-folder" / "errors.csv")
    code, _, err = run(env, "import", "customers", str(source), "--errors", nowhere)
    assert code == 2
    assert "cannot write a report there" in err
    fake = tmp_path / "crm.csv.gz"
    fake.write_text("id,email\nc1,a@x.example\n", encoding="utf-8")
    code, _, err = run(env, "import", "customers", str(fake))
    assert code == 1
    assert "crm.csv.gz: not a gzip file" in err
    whole = gzip.compress(("id,email\n" + "c1,a@x.example\n" * 1000).encode())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    code, _, err = run(env, "import", "customers", str(cut), "--errors", str(tmp_path / "e"))
    assert code == 1
    assert "cut.csv.gz: cut off before its end" in err
    assert "Traceback" not in err


def slow_first_call(
    method: Callable[..., Awaitable[Any]], seconds: float = 0.05
) -> Callable[..., Awaitable[Any]]:
    """`method`, its first call held back: a later batch would overtake it if let."""
    calls = 0

    async def held(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(seconds)
        return await method(*args, **kwargs)

    return held


async def test_batches_written_at_once_still_find_duplicates_and_report_in_file_order(
    repository: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of two overlap: each repeated id is one a batch still being written holds.
    # The first batch's duplicate check and write are slowed, so that the second's would
    # overtake them, on one Redis too, were the waits for them missing.
    monkeypatch.setattr(repository, "first_seen", slow_first_call(repository.first_seen))
    write = slow_first_call(repository.write_customer_batch)
    monkeypatch.setattr(repository, "write_customer_batch", write)

    def row(line: int, cid: str) -> CustomerRow:
        return CustomerRow(line, Customer(id=f"crm-{cid}", email=f"{cid}@example.com"), {})

    rows: list[CustomerRow | Problem] = [row(2, "a"), row(3, "b"), row(4, "a"), row(5, "c")]
    rows.append(row(6, "c"))
    rows += [Problem(7, "a bad row"), row(8, "d"), row(9, "e"), row(10, "d"), row(11, "f")]
    said: list[tuple[int, str]] = []
    summary = await import_customers(
        repository,
        [*rows, row(12, "g")],
        {},
        batch_size=2,
        on_problem=lambda problem: said.append((problem.line or 0, problem.reason)),
        on_change=lambda line, change: said.append((line, change.status)),
    )
    # Batch after batch; within one, its customers, then its bad rows.
    assert said == [
        (2, "created"),
        (3, "created"),
        (5, "created"),
        (4, "duplicate id (first on line 2)"),
        (6, "duplicate id (first on line 5)"),
        (7, "a bad row"),
        (8, "created"),
        (9, "created"),
        (11, "created"),
        (10, "duplicate id (first on line 8)"),
        (12, "created"),
    ]
    assert (summary.rows, summary.created, summary.bad) == (11, 7, 4)


async def test_a_failed_batch_ends_the_import_and_every_write_is_reported(
    repository: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose write fails is the import's error; a batch written meanwhile is still
    reported, and none is written after it: what is stored is what was said."""
    write = repository.write_customer_batch
    calls = 0

    async def second_fails(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            await asyncio.sleep(0.05)  # The batch after it is written meanwhile.
            raise StoreUnavailable("injected")
        return await write(*args, **kwargs)

    monkeypatch.setattr(repository, "write_customer_batch", second_fails)
    rows: list[CustomerRow | Problem] = [
        CustomerRow(line, Customer(id=f"crm-{line}", email=f"c{line}@example.com"), {})
        for line in range(2, 14)
    ]
    said: list[int] = []
    with pytest.raises(StoreUnavailable):
        await import_customers(
            repository,
            rows,
            {},
            batch_size=2,
            on_problem=lambda problem: pytest.fail(problem.reason),
            on_change=lambda line, change: said.append(line),
        )
    await asyncio.sleep(0.1)  # Anything still writing would show now.
    stored = [n for n in range(2, 14) if await repository.get_customer(f"crm-{n}")]
    assert said[:2] == [2, 3]
    assert 4 not in said
    assert 5 not in said
    assert stored == said


def test_an_import_leaves_the_garbage_collector_as_it_found_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    """An import tunes the collector for its run (cli_support.collector_for_bulk), as a mint
    does; run in-process, as here, the process keeps the collector it had."""
    source = tmp_path / "crm.csv"
    source.write_text("id,email\ncrm-gc-1,gc.one@example.com\ncrm-gc-2,gc.two@example.com\n")
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    code, out, err = run(env, "import", "customers", str(source))
    assert code == 0, err
    assert "2 created" in out
    assert (gc.get_threshold(), gc.get_freeze_count()) == (threshold, frozen)
