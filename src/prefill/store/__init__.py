"""The Redis layer: the key schema (keys.py), one module per aggregate, and `Repository`, which
offers them all over one client.

A request reads top-down to here: web handler -> use case (services.py, admin.py) -> policy
(consent.py, tokens.py) -> `Repository`. Nothing outside this package names a Redis key.
"""

from __future__ import annotations

from prefill.store.apikeys import ApiKeyStore
from prefill.store.audit import AuditStore
from prefill.store.base import RateCount
from prefill.store.catalog import CatalogStore
from prefill.store.consent import REQUEST_RETENTION_SECONDS, ConsentOutcome, ConsentStore
from prefill.store.customers import (
    BATCH_SIZE,
    ConsentDecision,
    CustomerChange,
    CustomerPage,
    CustomerState,
    CustomerStore,
    LinkState,
    SavedCustomers,
)
from prefill.store.erasure import ErasureStore, Tombstone
from prefill.store.errors import CorruptRecord, RequestConflict, StoreUnavailable
from prefill.store.feed import FeedStore
from prefill.store.funnel import FunnelStore
from prefill.store.health import HealthStore
from prefill.store.limits import RateStore
from prefill.store.migration import MigrationReport, MigrationStore
from prefill.store.mint_reads import MintReadStore
from prefill.store.runs import RunStore


class Repository(
    MigrationStore,
    HealthStore,
    CatalogStore,
    MintReadStore,
    CustomerStore,
    ConsentStore,
    ErasureStore,
    AuditStore,
    FeedStore,
    FunnelStore,
    RateStore,
    RunStore,
    ApiKeyStore,
):
    """Reads and writes every aggregate of the key schema; one instance per Redis client."""


__all__ = [
    "BATCH_SIZE",
    "REQUEST_RETENTION_SECONDS",
    "ConsentDecision",
    "ConsentOutcome",
    "CorruptRecord",
    "CustomerChange",
    "CustomerPage",
    "CustomerState",
    "LinkState",
    "MigrationReport",
    "RateCount",
    "Repository",
    "RequestConflict",
    "SavedCustomers",
    "StoreUnavailable",
    "Tombstone",
]
