"""The per-process copy of forms, campaigns and contact persons.

Every link resolution reads the catalog version in the same Redis round trip as the customer, so
a change made through any instance (a revoked campaign, an edited form) is seen on the very next
request everywhere, while the catalog itself is only reloaded when it changed.
"""

from __future__ import annotations

import asyncio

from prefill.models import Catalog
from prefill.store import Repository


class CatalogCache:
    def __init__(self, repository: Repository) -> None:
        self._repo = repository
        self._catalog: Catalog | None = None
        self._reload_lock = asyncio.Lock()

    @property
    def cached(self) -> Catalog | None:
        """The last catalog loaded, possibly stale: for pages that must render without Redis."""
        return self._catalog

    async def current(self, seen_version: int | None = None) -> Catalog:
        """The catalog at `seen_version` (read now if not given), reloading if ours is older."""
        if seen_version is None:
            seen_version = await self._repo.catalog_version()
        if self._catalog is not None and self._catalog.version == seen_version:
            return self._catalog
        async with self._reload_lock:
            # Another request may have reloaded while this one waited.
            if self._catalog is None or self._catalog.version != seen_version:
                self._catalog = await self._repo.load_catalog()
            return self._catalog
