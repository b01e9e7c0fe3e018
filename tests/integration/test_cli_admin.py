"""The operator's admin commands against a real Redis: keys, consent, export, erase, retention."""

from __future__ import annotations

import json
import time
from pathlib import Path

from litestar.testing import TestClient

from prefill.app import create_app
from prefill.purposes import record_of_processing
from prefill.store.keys import customer_key
from prefill.store.records import UPDATED_AT
from tests.conftest import EXAMPLES, PUBLIC_URL, make_settings
from tests.helpers import run
from tests.topology import sync_client

ROOT = Path(__file__).resolve().parents[2]


def test_a_key_created_on_the_command_line_opens_the_admin_api(
    env: dict[str, str], redis_url: str
) -> None:
    code, secret, err = run(env, "keys", "create", "privacy officer", "--scope", "read")
    assert code == 0, err
    assert "shown only now" in err
    with TestClient(app=create_app(make_settings(redis_url)), base_url=PUBLIC_URL) as client:
        headers = {"Authorization": f"Bearer {secret.strip()}"}
        assert client.get("/admin/api/v1/forms", headers=headers).status_code == 200
        assert client.put("/admin/api/v1/forms/x", headers=headers, json={}).status_code == 403
        code, listing, _ = run(env, "keys", "list")
        key_id = listing.split()[0]
        assert "privacy officer" in listing
        assert secret.strip() not in listing
        assert run(env, "keys", "revoke", key_id)[0] == 0
        assert client.get("/admin/api/v1/forms", headers=headers).status_code == 401
    code, _, err = run(env, "keys", "revoke", key_id)
    assert code != 0
    assert "no API key" in err


def test_consent_show_grant_withdraw(env: dict[str, str]) -> None:
    assert run(env, "import", "examples", str(EXAMPLES))[0] == 0
    withdraw = ("consent", "withdraw", "cust-1001", "personalization")
    code, out, err = run(env, *withdraw, "--note", "phone")
    assert code == 0, err
    assert "withdrawn (recorded, durable)" in out
    code, out, _ = run(env, *withdraw)
    assert "already withdrawn; nothing recorded" in out
    code, out, err = run(
        env, "consent", "grant", "cust-1001", "personalization", "--notice-version", "2027-02"
    )
    assert code == 0, err
    code, out, _ = run(env, "consent", "show", "cust-1001")
    assert "personalization: granted" in out
    lines = [line for line in out.splitlines() if "via admin" in line]
    assert len(lines) == 2
    assert "withdrawn" in lines[0]
    assert "by cli:" in lines[0]
    assert "phone" in lines[0]
    assert "notice 2027-02" in lines[1]
    code, _, err = run(env, "consent", "grant", "cust-1001", "newsletter", "--notice-version", "1")
    assert code != 0
    assert "not a consent purpose" in err
    code, _, err = run(env, "consent", "show", "nobody")
    assert code != 0
    assert "no customer 'nobody'" in err


def test_export_then_erase(env: dict[str, str], redis_url: str, tmp_path: Path) -> None:
    assert run(env, "import", "examples", str(EXAMPLES))[0] == 0
    target = tmp_path / "export.json"
    code, _, err = run(env, "export", "cust-1003", "--output", str(target))
    assert code == 0, err
    assert err == f"wrote the export of cust-1003 to {target}\n"
    export = json.loads(target.read_text())
    assert export["customer"]["first_name"] == "Björn"
    assert "cust-1001" not in target.read_text()
    code, _, _ = run(env, "erase", "cust-1003", stdin="n\n")
    assert code != 0
    with sync_client(redis_url) as raw:
        assert raw.exists(customer_key("cust-1003"))
        code, out, err = run(env, "erase", "cust-1003", "--yes")
        assert code == 0, err
        assert "erased cust-1003" in out
        assert list(raw.scan_iter("*cust-1003*")) == []


def test_retention_erases_customers_not_updated_for_the_retention(
    env: dict[str, str], redis_url: str
) -> None:
    assert run(env, "import", "examples", str(EXAMPLES))[0] == 0
    with sync_client(redis_url) as raw:
        stale = time.time() - 4 * 365 * 86_400
        raw.hset(customer_key("cust-1004"), UPDATED_AT, stale)
        code, out, err = run(env, "retention")
        assert code == 0, err
        assert "checked 7 customer(s), erased 1" in out
        assert not raw.exists(customer_key("cust-1004"))
        assert raw.exists(customer_key("cust-1005"))


def test_the_shipped_record_of_processing_is_the_generated_one(env: dict[str, str]) -> None:
    shipped = (ROOT / "docs" / "record-of-processing.md").read_text()
    assert shipped == record_of_processing(), (
        "docs/record-of-processing.md is stale: run "
        "`prefill docs record-of-processing --output docs/record-of-processing.md`"
    )
    code, out, _ = run(env, "docs", "record-of-processing")
    assert code == 0
    assert out == shipped
    for key in ("pf:{b:<n>}:c:<id>", "pf:{b:<p>}:erased:<pseudonym>", "pf:{feed:<k>}:changes"):
        assert key in shipped


def test_consent_show_tells_an_erasure_and_a_re_creation_over_it(env: dict[str, str]) -> None:
    assert run(env, "import", "examples", str(EXAMPLES))[0] == 0
    code, out, err = run(env, "consent", "show", "cust-1001")
    assert code == 0, err
    assert "erase" not in out  # never erased: nothing said
    assert run(env, "erase", "cust-1001", "--yes")[0] == 0
    day = time.strftime("%Y-%m-%d", time.gmtime())
    code, out, err = run(env, "consent", "show", "cust-1001")
    assert code == 0, err
    assert out.startswith(f"erased on {day} ")
    assert out.endswith(
        "; no record since. Withdrawn purposes kept under a pseudonym: "
        "email_marketing, personalization\n"
    )
    assert "Matti" not in out
    assert run(env, "import", "examples", str(EXAMPLES))[0] == 0
    code, out, err = run(env, "consent", "show", "cust-1001")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"re-created over an erasure on {day} ")
    assert lines[0].endswith(
        "withdrawn purposes carried over (an import cannot grant them again): "
        "email_marketing, personalization"
    )
    assert "granted" not in out  # the file's grants were not recorded over the erasure
