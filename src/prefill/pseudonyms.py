"""Pseudonyms for what must outlive an erasure: a keyed HMAC of the customer id.

Without the service's secret keys the pseudonym cannot be linked back to a customer id, not even
by someone holding a copy of the Redis data and a list of candidate ids.
"""

from __future__ import annotations

import hashlib
import hmac

_CONTEXT = b"prefill.pseudonym.v1"


class Pseudonymizer:
    """Newest key writes; every key is tried on lookup, so key rotation keeps old pseudonyms."""

    def __init__(self, secret_keys: list[str]) -> None:
        # A key derived for this one use, so a pseudonym never equals any link signature.
        self._keys = [
            hmac.new(key.encode(), _CONTEXT, hashlib.sha256).digest() for key in secret_keys
        ]

    def of(self, value: str) -> str:
        return self._with(self._keys[-1], value)

    def candidates(self, value: str) -> list[str]:
        return [self._with(key, value) for key in reversed(self._keys)]

    @staticmethod
    def _with(key: bytes, value: str) -> str:
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]
