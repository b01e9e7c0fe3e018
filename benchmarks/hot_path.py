"""The cost of resolving a link, step by step, measured side by side in one run.

Run:  .venv/bin/python benchmarks/hot_path.py [--iterations 2000]

Starts its own redis-server (the shipped binary, on a free port, AOF fsync always as in the
embedded mode), loads examples/, then times each step of the hot path and prints each as a ratio
of one Redis round trip (PING), so the figures compare across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from litestar.testing import AsyncTestClient

from prefill import funnel
from prefill.app import create_app
from prefill.catalog import CatalogCache
from prefill.imports import import_directory
from prefill.links import LinkBuilder
from prefill.models import AuditEntry, AuditKind, Channel
from prefill.pseudonyms import Pseudonymizer
from prefill.services import PrefillService, Visitor
from prefill.settings import Settings
from prefill.storage import EmbeddedRedis, free_tcp_port
from prefill.store import Repository
from prefill.store.client import connect
from prefill.store.keys import bucket_of, catalog_version_copy_key, customer_key
from prefill.tokens import LinkClaims, LinkSigner, TokenPurpose

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SECRET = "benchmark-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


async def timed(step: Callable[[], Awaitable[object]], iterations: int) -> float:
    """Median seconds per call, after a warm-up."""
    for _ in range(min(100, iterations)):
        await step()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        await step()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


async def run(iterations: int, data_dir: Path) -> None:
    server = EmbeddedRedis(data_dir, port=free_tcp_port())
    server.start()
    try:
        client = connect(server.url, timeout_seconds=2, retries=1)
        repository = Repository(client, Pseudonymizer([SECRET]))
        await import_directory(repository, EXAMPLES)
        signer = LinkSigner([SECRET], 365 * 86_400)
        service = PrefillService(repository, signer, CatalogCache(repository), "Bench Oy")
        claims = LinkClaims("cust-1001", "spring-summit-2027-invite", 0)
        token = signer.sign(TokenPurpose.FORM, claims)
        visitor = Visitor(accept_language="fi")

        async def hmac_only() -> object:
            return signer.verify(TokenPurpose.FORM, token)

        async def ping() -> object:
            return await client.ping()

        async def pipelined_read() -> object:
            return await repository.read_link_state("cust-1001")

        async def sequential_reads() -> object:
            # The same two reads without a pipeline: what the hot path avoids.
            await client.get(catalog_version_copy_key(bucket_of("cust-1001")))
            return await client.hgetall(customer_key("cust-1001"))

        entry = AuditEntry(kind=AuditKind.DISCLOSURE, at=time.time(), customer_id="cust-1001")

        async def audit_write() -> object:
            await repository.record_audit(entry)
            return None

        # A person's page load: the funnel's counter goes in the audit write's round trip.
        person = funnel.Person("cust-1001", 45 * 86_400)
        hit = funnel.hit(claims.campaign_id, person, None, script_ran=False, prefilled=False)

        async def audit_and_funnel() -> object:
            await repository.record_audit(entry, funnel=hit)
            return None

        async def use_case() -> object:
            return await service.form_view("spring-summit-2027", token, Channel.PAGE, visitor)

        settings = Settings.from_env({}, secret_keys=[SECRET], redis_url=server.url)
        url = LinkBuilder(signer, "http://bench.local").form_url(claims, "spring-summit-2027")
        path = url.removeprefix("http://bench.local")
        async with AsyncTestClient(app=create_app(settings), base_url="http://bench.local") as http:

            async def full_page() -> object:
                return await http.get(path)

            results = {
                "HMAC verify only": await timed(hmac_only, iterations),
                "Redis PING (one round trip)": await timed(ping, iterations),
                "link state, pipelined (1 trip)": await timed(pipelined_read, iterations),
                "link state, sequential (3 trips)": await timed(sequential_reads, iterations),
                "audit XADD (AOF fsync always)": await timed(audit_write, iterations),
                "audit XADD + funnel counter": await timed(audit_and_funnel, iterations),
                "use case: verify+read+audit": await timed(use_case, iterations),
                "HTTP page via ASGI test client": await timed(full_page, iterations // 4 or 1),
            }
        await client.aclose()
    finally:
        server.stop()

    base = results["Redis PING (one round trip)"]
    print(f"{'step':36} {'median µs':>10} {'x PING':>8}")
    for name, seconds in results.items():
        print(f"{name:36} {seconds * 1e6:10.1f} {seconds / base:8.2f}")
    sequential = results["link state, sequential (3 trips)"]
    pipelined = results["link state, pipelined (1 trip)"]
    print(
        f"\npipelining the link-state reads: {sequential / pipelined:.2f}x faster than three trips"
    )
    with_funnel = results["audit XADD + funnel counter"] / results["audit XADD (AOF fsync always)"]
    print(f"the funnel's counter in the audit's round trip: {with_funnel:.2f}x the audit alone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    # The test client logs every request URL, token included: keep the output to the figures.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.iterations, Path(tmp)))


if __name__ == "__main__":
    main()
