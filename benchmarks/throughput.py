"""Requests per second of the running service over loopback, beside a bare and a naive app.

Run:  .venv/bin/python benchmarks/throughput.py [--seconds 4] [--connections 32] [--warm-up 1]

Starts its own redis-server (AOF fsync always, as in the embedded mode), loads examples/ and
mints a link with the CLI, and runs `prefill serve` as a user does. On the same HTTP server it
runs a bare Litestar hello-world, a naive handler (itsdangerous verify + one HGETALL + msgspec)
and, when the `bench` extra is installed, a hand-written FastAPI + PyJWT handler doing one Redis
read. wrk drives each row at fixed concurrency (a small load generator of its own if wrk is
absent), after `--warm-up` seconds of the same load that are not counted; every figure is
printed as a ratio to the hello-world's, which travel across machines better than the
absolute ones. The server's CPU time per request (read from /proc, over all its
processes) is printed too, with the hello-world's as a ratio to it ("hello/it", comparable to
"x hello"): on a machine shared with other work it moves far less than req/s does.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import cast

import msgspec
import redis.asyncio
import uvicorn
from itsdangerous import BadSignature, URLSafeSerializer
from litestar import Litestar, Response, get

from prefill.storage import EmbeddedRedis, free_tcp_port
from prefill.store.keys import customer_key

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SECRET = "benchmark-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
CAMPAIGN = "spring-summit-2027-invite"
PREFILL = [sys.executable, "-m", "prefill.cli"]


class Row(msgspec.Struct):
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: float = math.nan
    """The server's CPU time (all its processes) per answered request: steadier than req/s
    when other work shares the machine."""
    note: str = ""
    """Why a row was not measured."""


def bare_app(redis_url: str) -> Litestar:
    """Hello-world and the naive one-GET handler: the framework's own speed on this server."""
    client = redis.asyncio.Redis.from_url(redis_url)
    serializer = URLSafeSerializer(SECRET, salt="naive")

    @get("/hello", sync_to_thread=False)
    def hello() -> str:
        return "hello"

    @get("/naive")
    async def naive(t: str) -> Response[bytes]:
        try:
            customer_id = serializer.loads(t)
        except BadSignature:
            return Response(b"{}", status_code=403)
        record = cast("dict[bytes, bytes]", await client.hgetall(customer_key(customer_id)))
        # Some fields are binary (msgpack, store/records.py): replaced, not a 500.
        body = msgspec.json.encode(
            {k.decode(): v.decode(errors="replace") for k, v in record.items()}
        )
        return Response(body, media_type="application/json")

    return Litestar([hello, naive])


def fastapi_app(redis_url: str) -> object:
    """What the widget's endpoint would be written as by hand: a JWT and one Redis read."""
    import jwt
    from fastapi import FastAPI, HTTPException

    client = redis.asyncio.Redis.from_url(redis_url)
    app = FastAPI()

    @app.get("/prefill")
    async def prefill(t: str) -> dict[str, str]:
        try:
            claims = jwt.decode(t, SECRET, algorithms=["HS256"])
        except jwt.InvalidTokenError as exc:
            raise HTTPException(status_code=403) from exc
        record = cast("dict[bytes, bytes]", await client.hgetall(customer_key(claims["sub"])))
        return {k.decode(): v.decode(errors="replace") for k, v in record.items()}

    return app


def fastapi_missing() -> str | None:
    """Why the FastAPI row cannot run here, if it cannot."""
    try:
        import fastapi  # noqa: F401
        import jwt  # noqa: F401
    except ImportError as exc:
        return f"skipped: {exc.name} is not installed (pip install -e '.[bench]')"
    return None


def serve_bare(port: int, redis_url: str) -> None:
    uvicorn.run(bare_app(redis_url), port=port, access_log=False, log_level="warning")


def serve_fastapi(port: int, redis_url: str) -> None:
    app = fastapi_app(redis_url)
    uvicorn.run(app, port=port, access_log=False, log_level="warning")  # type: ignore[arg-type]


def cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run([*PREFILL, *args], env=env, input=stdin, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"prefill {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def start(command: list[str], env: dict[str, str], ready_url: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(ready_url, timeout=1):  # noqa: S310 (loopback only)
                return process
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{command} did not come up")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


def milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+|nan)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and all its descendants (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) for child in children)


def wrk(name: str, url: str, seconds: int, connections: int, script: Path | None) -> Row:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Row(
        name,
        float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        milliseconds(percentiles.get("50", "nans")),  # wrk omits them when nothing answered
        milliseconds(percentiles.get("99", "nans")),
        int(errors.group(1)) if errors else 0,
    )


async def own_load(name: str, url: str, seconds: float, connections: int, method: str) -> Row:
    """wrk's fallback: keep-alive connections, each sending one request after another."""
    parts = urllib.parse.urlsplit(url)
    request = (
        f"{method} {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n"
    ).encode()
    samples: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        while time.monotonic() < deadline:
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
            if method != "HEAD" and length:
                await reader.readexactly(int(length.group(1)))
            samples.append(time.perf_counter() - began)
            errors += not head.startswith((b"HTTP/1.1 2", b"HTTP/1.1 3"))
        writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    samples.sort()
    return Row(
        name,
        len(samples) / seconds,
        samples[len(samples) // 2] * 1000,
        samples[int(len(samples) * 0.99)] * 1000,
        errors,
    )


def measure(
    name: str,
    url: str,
    args: argparse.Namespace,
    script: Path | None = None,
    server: subprocess.Popen[bytes] | None = None,
) -> Row:
    if shutil.which("wrk"):
        if args.warm_up:
            # Unmeasured: a process's first requests fill its caches (routes, prepared
            # commands, rendered skeletons) and its allocator's pools, in every row alike.
            wrk(name, url, args.warm_up, args.connections, script)
        before = cpu_seconds(server.pid) if server else math.nan
        row = wrk(name, url, args.seconds, args.connections, script)
        used = cpu_seconds(server.pid) - before if server else math.nan
        answered = row.rps * args.seconds
        return msgspec.structs.replace(row, cpu_ms=used * 1000 / answered if answered else math.nan)
    method = "HEAD" if script and "HEAD" in script.read_text() else "GET"
    if script and "POST" in script.read_text():
        return Row(name, 0.0, 0.0, 0.0, -1)  # Posting needs wrk's Lua; not worth a rewrite.
    return asyncio.run(own_load(name, url, args.seconds, args.connections, method))


def lua(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.lua"
    path.write_text(text)
    return path


def submit_script(folder: Path, form_url: str) -> Path:
    """A browser's post of the prefilled form: its CSRF cookie, hidden token and shown values."""
    with urllib.request.urlopen(form_url, timeout=5) as response:  # noqa: S310 (loopback only)
        page = response.read().decode()
        cookies = [c.split(";")[0] for c in response.headers.get_all("Set-Cookie") or []]
    fields = dict(re.findall(r'<input[^>]* name="([^"]+)"[^>]* value="([^"]*)"', page))
    body = urllib.parse.urlencode(fields)
    return lua(
        folder,
        "submit",
        f'wrk.method = "POST"\nwrk.body = "{body}"\n'
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        f'wrk.headers["Cookie"] = "{"; ".join(cookies)}"\n',
    )


def service_rows(
    args: argparse.Namespace,
    server: subprocess.Popen[bytes],
    base: str,
    links: dict[str, str],
    folder: Path,
) -> list[Row]:
    form = links["form_url"]
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(form).query)["t"][0]
    form_id = urllib.parse.urlsplit(form).path.rsplit("/", 1)[1]
    forged = form[:-3] + ("xyz" if not form.endswith("xyz") else "abc")
    head = lua(folder, "head", 'wrk.method = "HEAD"\n')
    rows = [
        measure(
            "widget JSON", f"{base}/api/v1/forms/{form_id}/prefill?t={token}", args, server=server
        ),
        measure("hosted form page", form, args, server=server),
        measure("card page", links["card_url"], args, server=server),
        measure("vCard", links["vcard_url"], args, server=server),
        measure("refused (forged) link", forged, args, server=server),
        measure("scanner's HEAD", form, args, head, server),
        measure("/health/live", f"{base}/health/live", args, server=server),
    ]
    rows.append(
        measure(
            "form submit (POST)",
            f"{base}{urllib.parse.urlsplit(form).path}/submit",
            args,
            submit_script(folder, form),
            server,
        )
    )
    return rows


def fastapi_row(args: argparse.Namespace, env: dict[str, str], redis_url: str) -> Row:
    """The FastAPI + PyJWT handler, or a row that says why it was skipped."""
    name = "FastAPI+PyJWT, one HGETALL"
    if why := fastapi_missing():
        return Row(name, 0.0, 0.0, 0.0, 0, note=why)
    import jwt

    port = free_tcp_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, __file__, "--fastapi", str(port), "--redis", redis_url]
    token = jwt.encode({"sub": "cust-1003"}, SECRET, algorithm="HS256")
    process = start(command, env, f"{url}/docs")
    try:
        return measure(name, f"{url}/prefill?t={token}", args, server=process)
    finally:
        stop(process)


def service_env(redis_url: str, base: str, folder: Path) -> dict[str, str]:
    """The environment `prefill serve` and the CLI run with: this Redis, no PREFILL_* of ours."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PREFILL_")} | {
        "PREFILL_REDIS_URL": redis_url,
        "PREFILL_SECRET_KEYS": SECRET,
        "PREFILL_PUBLIC_URL": base,
        "PREFILL_DATA_DIR": str(folder / "data"),
        "PREFILL_RATE_LIMITS": "off",  # The rows measure the path, not a limiter's refusals.
    }


def load_examples(env: dict[str, str]) -> dict[str, str]:
    """Imports the examples with the CLI and mints one customer's links (a row of mint's CSV)."""
    cli(env, "import", "examples", str(EXAMPLES))
    minted = cli(env, "mint", "--campaign", CAMPAIGN, stdin="customer_id\ncust-1003\n")
    return next(csv.DictReader(io.StringIO(minted)))


def run(args: argparse.Namespace, folder: Path) -> None:
    server = EmbeddedRedis(folder / "redis", port=free_tcp_port())
    server.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        port = free_tcp_port()
        base = f"http://127.0.0.1:{port}"
        env = service_env(server.url, base, folder)
        links = load_examples(env)

        bare_port = free_tcp_port()
        bare = f"http://127.0.0.1:{bare_port}"
        command = [sys.executable, __file__, "--bare", str(bare_port), "--redis", server.url]
        processes.append(start(command, env, f"{bare}/hello"))
        naive_token = URLSafeSerializer(SECRET, salt="naive").dumps("cust-1003")
        rows = [
            measure("bare hello-world", f"{bare}/hello", args, server=processes[-1]),
            measure(
                "naive verify+HGETALL+msgspec",
                f"{bare}/naive?t={naive_token}",
                args,
                server=processes[-1],
            ),
        ]
        stop(processes.pop())
        rows.append(fastapi_row(args, env, server.url))

        token = urllib.parse.parse_qs(urllib.parse.urlsplit(links["form_url"]).query)["t"][0]
        form_id = urllib.parse.urlsplit(links["form_url"]).path.rsplit("/", 1)[1]
        widget = f"{base}/api/v1/forms/{form_id}/prefill?t={token}"
        # The limiter counts every request, but one link hammered from one address would soon
        # be refused (429): a limit above what the row sends measures the counting, not refusals.
        limits_on = {k: v for k, v in env.items() if k != "PREFILL_RATE_LIMITS"} | {
            "PREFILL_REQUESTS_PER_LINK": "1000000000"
        }
        for name, workers, serve_env in (
            ("", 1, env),
            ("widget JSON, rate limits on", 1, limits_on),
            ("widget JSON, --workers 1", 1, env),
            ("widget JSON, --workers 2", 2, env),
        ):
            serve = [*PREFILL, "serve", "--port", str(port), "--workers", str(workers)]
            processes.append(start(serve, serve_env, f"{base}/health/ready"))
            if name:
                rows.append(measure(name, widget, args, server=processes[-1]))
            else:
                rows += service_rows(args, processes[-1], base, links, folder)
            stop(processes.pop())
    finally:
        for process in processes:
            stop(process)
        server.stop()
    report(rows, args)


def report(rows: list[Row], args: argparse.Namespace) -> None:
    hello = rows[0]
    tool = "wrk" if shutil.which("wrk") else "own load generator"
    print(f"{tool}, 1 thread, {args.connections} connections, {args.seconds}s per row, loopback")
    print(
        f"{'row':32} {'req/s':>9} {'x hello':>8} {'p50 ms':>8} {'x':>6} {'p99 ms':>8} "
        f"{'x':>6} {'non-2/3xx':>9} {'CPU ms/req':>10} {'hello/it':>8}"
    )
    for row in rows:
        if row.note:
            print(f"{row.name:32} {row.note}")
            continue
        print(
            f"{row.name:32} {row.rps:9.0f} {row.rps / hello.rps:8.3f} {row.p50_ms:8.2f} "
            f"{row.p50_ms / hello.p50_ms:6.1f} {row.p99_ms:8.2f} {row.p99_ms / hello.p99_ms:6.1f} "
            f"{row.errors:9d} {row.cpu_ms:10.3f} {hello.cpu_ms / (row.cpu_ms or math.nan):8.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--warm-up", type=int, default=1, help="seconds of load before each row, not measured"
    )
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)  # the bare apps' process
    parser.add_argument("--fastapi", type=int, help=argparse.SUPPRESS)  # the FastAPI process
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        serve_bare(args.bare, args.redis)
        return
    if args.fastapi:
        serve_fastapi(args.fastapi, args.redis)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
