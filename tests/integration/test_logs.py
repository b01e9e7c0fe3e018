"""The real service's logs, over a run that touches every surface: every line is JSON, requests
carry an id, and no personal value, token or key secret is in any line the service or the CLI
prints."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from structlog.contextvars import bound_contextvars

from prefill.logs import (
    REQUEST_ID,
    AccessLine,
    JSONLineHandler,
    _line_file,
    _only_handler,
    configure_logging,
    log_access,
)
from prefill.storage import EmbeddedRedis, free_tcp_port
from tests.browser.harness import wait_until_ready
from tests.conftest import EXAMPLES, SECRET
from tests.helpers import API_PATH, CAMPAIGN_ID, FORM_PATH

ADMIN = "/admin/api/v1"
ALLOWED_ORIGIN = "http://127.0.0.1:8001"  # examples/forms.json
MINTED = ("cust-1001", "cust-1003", "cust-1005", "cust-1007")  # cust-1007: no consent to prefill
SUPPLIED_ID = "0123456789abcdef0123456789abcdef"
UNSAFE_ID = "matti.korhonen@lampo.example"
"""A request id no one should send, and the service must not repeat."""
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def example_values() -> set[str]:
    """Every example customer's id and personal value."""
    with (EXAMPLES / "customers.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    fields = ("id", "email", "first_name", "last_name", "phone", "company")
    return {row[f] for row in rows for f in fields if row[f]}


@dataclass
class Run:
    """The service as a process on its own Redis, and what a run gave to it."""

    url: str
    env: dict[str, str]
    redis: EmbeddedRedis
    log: Path
    secrets: set[str] = field(default_factory=set)
    """Tokens and key secrets the run used: none may be logged."""
    cli_errors: list[str] = field(default_factory=list)
    """What the CLI commands printed on stderr."""

    def cli(self, *args: str, stdin: str = "", exit_code: int = 0) -> str:
        """`prefill <args>` as its own process; its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "prefill.cli", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        self.cli_errors.append(done.stderr)
        assert done.returncode == exit_code, done.stderr
        return done.stdout


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    redis = EmbeddedRedis(tmp_path / "redis", port=free_tcp_port())
    redis.start()
    url = f"http://127.0.0.1:{free_tcp_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFILL_")}
    env |= {
        "PREFILL_REDIS_URL": redis.url,
        "PREFILL_SECRET_KEYS": SECRET,
        "PREFILL_PUBLIC_URL": url,
        "PREFILL_DATA_DIR": str(tmp_path / "data"),
    }
    log = tmp_path / "service.log"
    port = url.rsplit(":", 1)[1]
    with log.open("wb") as out:
        command = [sys.executable, "-m", "prefill.cli", "serve", "--port", port]
        service = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    try:
        wait_until_ready(url, service)
        yield Run(url, env, redis, log)
    finally:
        service.terminate()  # SIGTERM: uvicorn's graceful shutdown, logged too
        try:
            service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        redis.stop()


def drive_every_surface(run: Run, http: httpx.Client) -> None:
    run.cli("import", "examples", str(EXAMPLES))
    key = run.cli(
        "keys",
        "create",
        "log-test",
        "--scope",
        "read",
        "--scope",
        "consent",
        "--scope",
        "erase",
        "--scope",
        "metrics",
    ).strip()
    admin = {"Authorization": f"Bearer {key}"}
    minted = run.cli(
        "mint", "--campaign", CAMPAIGN_ID, stdin="customer_id\n" + "\n".join(MINTED) + "\n"
    )
    rows = list(csv.DictReader(io.StringIO(minted)))
    assert [row["customer_id"] for row in rows] == list(MINTED)
    url_columns = ("form_url", "card_url", "vcard_url", "unsubscribe_url")
    run.secrets |= {key} | {row[c].split("?t=")[1] for row in rows for c in url_columns}

    run.cli("mint", "--campaign", CAMPAIGN_ID, "--all-consenting")
    # A CRM export whose bad rows are this data's own customers: reported by line, not by id.
    export = run.log.with_name("crm.csv")
    good = (EXAMPLES / "customers.csv").read_text(encoding="utf-8").splitlines()
    bad = [good[1].replace(",fi,", ",de,"), good[2].replace("@", " at ")]
    export.write_text("\n".join([good[0], *bad, *good[3:]]) + "\n", encoding="utf-8")
    versions = ["--notice-version", "personalization=pz-1", "--notice-version", "email_marketing=e"]
    errors = ["--errors", str(run.log.with_name("errors.csv"))]
    run.cli("import", "customers", str(export), *versions, *errors, exit_code=1)

    for row in rows:
        token = row["form_url"].split("?t=")[1]
        assert http.head(row["form_url"]).status_code == 200
        assert http.get(row["form_url"]).status_code == 200
        seen = {"User-Agent": "Mozilla/5.0 Firefox/140", "Sec-Fetch-Site": "same-origin"}
        assert http.post("/seen", data={"t": token}, headers=seen).status_code == 204
        for origin in (ALLOWED_ORIGIN, "https://elsewhere.example"):
            http.get(API_PATH, params={"t": token}, headers={"Origin": origin})
        assert http.get(row["card_url"]).status_code in (200, 404)
        http.get(row["vcard_url"])
        assert http.get(row["unsubscribe_url"]).status_code == 200
    matti, bjorn, kadri, eero = rows

    page = http.get(bjorn["form_url"])  # sets the CSRF cookie
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    posted = hidden | {"first_name": "Björn", "last_name": "Åkerlund", "phone": "+358405551003"}
    posted |= {"email": "bjorn.akerlund@kvarken.example", "company": "Kvarkens Analys Ab"}
    assert http.post(f"{FORM_PATH}/submit", data=posted).status_code == 303
    run.secrets.add(http.cookies["prefill_thanks"])  # who submitted: in a cookie, never logged
    assert "Johan Lindqvist" in http.get(f"{FORM_PATH}/thanks?lang=sv").text
    assert http.get(f"{FORM_PATH}/event.ics?lang=sv").status_code == 200
    no_csrf = {k: v for k, v in posted.items() if k != "_csrf_token"}
    assert http.post(f"{FORM_PATH}/submit", data=no_csrf).status_code == 403
    withdraw = {k: hidden[k] for k in ("_csrf_token", "t")} | {"purpose": "email_marketing"}
    assert http.post(f"{FORM_PATH}/withdraw", data=withdraw).status_code == 303
    not_you = http.post(f"{FORM_PATH}/not-you", data={"t": kadri["form_url"].split("?t=")[1]})
    assert not_you.status_code == 303
    assert http.post(matti["unsubscribe_url"], data=ONE_CLICK).status_code == 200
    forged = "eyJjIjoiY3VzdC0xMDAxIn0.forged.signature"
    run.secrets.add(forged)
    http.get(FORM_PATH, params={"t": forged})

    customer = f"{ADMIN}/customers/cust-1001"
    assert http.get(customer, headers=admin).status_code == 200
    assert http.get(f"{customer}/consent", headers=admin).status_code == 200
    change = {"purpose": "personalization", "action": "withdrawn", "note": "phone call"}
    assert http.post(f"{customer}/consent", headers=admin, json=change).status_code == 201
    assert http.get(f"{customer}/export", headers=admin).status_code == 200
    assert http.delete(f"{ADMIN}/customers/cust-1002", headers=admin).status_code == 200
    assert http.get(f"{ADMIN}/customers/cust-1006").status_code == 401  # no key

    assert http.get("/metrics", headers=admin).status_code == 200
    as_browser = httpx.BasicAuth("marketing", key)
    assert http.get("/admin/dashboard", auth=as_browser).status_code == 200
    assert http.get(f"{ADMIN}/funnel", auth=as_browser).status_code == 200
    assert http.get(f"{ADMIN}/funnel.csv", headers=admin).status_code == 200
    assert http.get("/schema/openapi.json").status_code == 200
    assert http.get(f"{ADMIN}/customers/cust-9999", headers=admin).status_code == 404
    assert http.get("/nothing/matti.korhonen@lampo.example").status_code == 404
    assert http.delete(FORM_PATH).status_code == 405
    oversize = ONE_CLICK | {"padding": "x" * 70_000}
    assert http.post(eero["unsubscribe_url"], data=oversize).status_code == 413


def printed(log: Path) -> list[dict[str, Any]]:
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines, "the service printed nothing"
    records = []
    for line in lines:
        record = json.loads(line)  # every line, from every logger, is one JSON object
        assert {"event", "level", "timestamp"} <= record.keys(), line
        assert record["timestamp"].endswith("Z"), line
        records.append(record)
    return records


def test_the_service_logs_json_lines_with_request_ids_and_nothing_personal(run: Run) -> None:
    with httpx.Client(base_url=run.url, timeout=10) as http:
        drive_every_surface(run, http)
        supplied = http.get("/health/live", headers={"X-Request-ID": SUPPLIED_ID})
        assert supplied.headers["X-Request-ID"] == SUPPLIED_ID
        personal = http.get(
            "/health/live", headers={"X-Request-ID": "matti.korhonen@lampo.example"}
        )
        replaced = personal.headers["X-Request-ID"]
        assert re.fullmatch("[0-9a-f]{32}", replaced)
        run.redis.stop()  # The service fails closed and logs why, within the request.
        down = http.get(API_PATH, params={"t": "x"}, headers={"X-Request-ID": SUPPLIED_ID[::-1]})
        assert down.status_code == 503
    run.redis.start()  # for the fixture's teardown

    records = printed(run.log)
    requests = [r for r in records if r["event"] == "request"]
    assert len(requests) >= 40  # every routed request; unrouted ones (404, 405) never reach it
    assert all(re.fullmatch("[0-9a-f-]{16,64}", r["request_id"]) for r in requests)
    assert {r["route"] for r in requests} >= {
        "/f/{form_id}",
        "/card",
        "/u",
        "/metrics",
        "/seen",
        "/admin/dashboard",
        "/admin/api/v1/funnel.csv",
    }
    ids = [r["request_id"] for r in requests]
    assert len(set(ids)) == len(ids), "each request gets its own id"
    assert SUPPLIED_ID in ids
    assert replaced in ids
    during_outage = [r for r in records if r.get("request_id") == SUPPLIED_ID[::-1]]
    assert [r["event"] for r in during_outage] == ["redis unavailable: ConnectionError", "request"]
    assert {303, 401, 403, 404, 413, 503} <= {r["status"] for r in requests}

    logged = run.log.read_text(encoding="utf-8")
    decoded = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)  # "P\u00e4ivi"
    for text in (logged, decoded, *run.cli_errors):
        for secret in example_values() | run.secrets:
            assert secret not in text, f"{secret!r} leaked into a log"


# -- the formatter's rules, in this process ---------------------------------------------------


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """configure_logging() into a buffer; the process's logging as it was, afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(stream=stream)
    try:
        yield stream
    finally:
        logging.captureWarnings(False)
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_exception_is_logged_by_type_and_place_never_by_its_message(
    json_logs: io.StringIO,
) -> None:
    try:
        {"cust-1002": "known"}[UNSAFE_ID]
    except KeyError:
        logging.getLogger("prefill.test").exception("lookup failed")
    [record] = lines(json_logs)
    assert record["event"] == "lookup failed"
    assert record["level"] == "error"
    assert record["exception"] == "KeyError"
    assert "test_an_exception_is_logged_by_type" in record["frames"][-1]
    assert UNSAFE_ID not in json_logs.getvalue()


def test_lines_carry_the_bound_request_id_and_only_the_admitted_extra_fields(
    json_logs: io.StringIO,
) -> None:
    with bound_contextvars(request_id=SUPPLIED_ID):
        logging.getLogger("prefill.test").warning("stdlib", extra={"email": UNSAFE_ID})
        structlog.get_logger("prefill.test").info("structlog", route="/f/{form_id}")
    logging.getLogger("prefill.test").info("after", extra={"status": 200})
    first, second, third = lines(json_logs)
    assert first["request_id"] == second["request_id"] == SUPPLIED_ID
    assert "request_id" not in third
    assert (second["logger"], second["route"], third["status"]) == (
        "prefill.test",
        "/f/{form_id}",
        200,
    )
    assert UNSAFE_ID not in json_logs.getvalue()


def test_lines_logged_while_a_request_is_answered_carry_its_id(
    json_logs: io.StringIO,
) -> None:
    answering = REQUEST_ID.set(SUPPLIED_ID)
    try:
        logging.getLogger("prefill.test").warning("during", extra={"status": 503})
        structlog.get_logger("prefill.test").info("during too")
    finally:
        REQUEST_ID.reset(answering)
    logging.getLogger("prefill.test").warning("after")
    during, during_too, after = lines(json_logs)
    assert during["request_id"] == during_too["request_id"] == SUPPLIED_ID
    assert "request_id" not in after


def test_an_access_line_reads_as_the_structlog_chain_writes_the_same_fields(
    json_logs: io.StringIO,
) -> None:
    fields = {"method": "GET", "route": "/f/{form_id}", "status": 200, "duration_ms": 1.5}
    with bound_contextvars(request_id=SUPPLIED_ID):
        logging.getLogger("prefill.requests").info("request", extra=fields)
    line = AccessLine(request_id=SUPPLIED_ID, **fields)  # type: ignore[arg-type]
    logging.getLogger("prefill.requests").info(line)
    chain, direct = lines(json_logs)
    assert list(direct) == list(chain)  # the same keys in the same order
    assert direct.pop("timestamp")[:16] == chain.pop("timestamp")[:16]
    assert direct == chain


def test_an_access_line_written_without_a_record_is_the_line_logging_writes(
    json_logs: io.StringIO,
) -> None:
    logger = logging.getLogger("prefill.requests")
    line = AccessLine(
        method="GET", route="/f/{form_id}", status=200, duration_ms=1.5, request_id=SUPPLIED_ID
    )
    logger.info(line)
    root = logging.getLogger()
    others = [h for h in root.handlers if not isinstance(h, JSONLineHandler)]  # pytest's own
    for handler in others:
        root.removeHandler(handler)
    try:
        assert _only_handler(logger) is not None  # the direct way, not logging's
        log_access(logger, line)
    finally:
        for handler in others:
            root.addHandler(handler)
    through_logging, direct = lines(json_logs)
    assert direct.pop("timestamp")[:16] == through_logging.pop("timestamp")[:16]
    assert list(direct.items()) == list(through_logging.items())


class Collecting(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_an_access_line_goes_through_logging_where_anything_else_would_see_it(
    json_logs: io.StringIO,
) -> None:
    logger = logging.getLogger("prefill.requests")
    line = AccessLine(
        method="GET", route="/health/live", status=200, duration_ms=0.1, request_id=""
    )
    extra = Collecting()
    logger.addHandler(extra)
    try:
        log_access(logger, line)
    finally:
        logger.removeHandler(extra)
    logger.setLevel(logging.WARNING)
    try:
        log_access(logger, line)  # below the logger's level: nowhere
    finally:
        logger.setLevel(logging.NOTSET)
    assert [record.msg for record in extra.records] == [line]
    assert len(lines(json_logs)) == 1  # the root's handler, once, through propagation


def access_line(request_id: str = SUPPLIED_ID) -> AccessLine:
    return AccessLine(
        method="GET", route="/f/{form_id}", status=200, duration_ms=1.5, request_id=request_id
    )


def test_an_access_line_goes_to_the_process_stderr_as_one_write_of_the_same_line(
    json_logs: io.StringIO, capfd: pytest.CaptureFixture[str]
) -> None:
    logging.getLogger("prefill.requests").info(access_line())
    stderr = sys.__stderr__
    assert stderr is not None
    handler = JSONLineHandler(stderr)
    assert _line_file(stderr) is not None  # the direct way, not the text layer's
    handler.write_access(access_line(), "prefill.requests")
    [through_logging] = lines(json_logs)
    out = capfd.readouterr().err
    assert out.endswith("\n")
    assert out.count("\n") == 1
    direct = json.loads(out)
    assert direct.pop("timestamp")[:16] == through_logging.pop("timestamp")[:16]
    assert list(direct.items()) == list(through_logging.items())


def test_access_lines_written_from_several_threads_stay_whole(
    capfd: pytest.CaptureFixture[str],
) -> None:
    handler = JSONLineHandler(sys.__stderr__)

    def write(thread: int) -> None:
        for each in range(200):
            handler.write_access(access_line(f"{thread:016x}{each:016x}"), "prefill.requests")

    threads = [threading.Thread(target=write, args=(thread,)) for thread in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = [json.loads(line) for line in capfd.readouterr().err.splitlines()]
    assert sorted(line["request_id"] for line in written) == sorted(
        f"{thread:016x}{each:016x}" for thread in range(4) for each in range(200)
    )


class Trickle:
    """A file that takes a few bytes a write, as a pipe interrupted by signals may."""

    def __init__(self) -> None:
        self.taken = b""

    def write(self, data: bytes) -> int:
        self.taken += data[:7]
        return len(data[:7])


def test_an_access_line_cut_short_by_its_file_is_written_to_its_end() -> None:
    stream = io.StringIO()
    handler = JSONLineHandler(stream)
    trickle = Trickle()
    handler._direct = (stream, trickle)  # type: ignore[assignment]
    handler.write_access(access_line(), "prefill.requests")
    line = json.loads(trickle.taken)
    assert trickle.taken.endswith(b"}\n")
    assert (line["request_id"], line["logger"], line["level"]) == (
        SUPPLIED_ID,
        "prefill.requests",
        "info",
    )
    assert stream.getvalue() == ""


def test_an_access_line_to_another_text_file_goes_through_its_text_layer(tmp_path: Path) -> None:
    with (tmp_path / "access.log").open("w", encoding="utf-8", newline="\r\n") as stream:
        assert _line_file(stream) is None  # its line ends are its own
        JSONLineHandler(stream).write_access(access_line(), "prefill.requests")
    written = (tmp_path / "access.log").read_bytes()
    assert written.endswith(b'"}\r\n')
    assert json.loads(written)["request_id"] == SUPPLIED_ID
