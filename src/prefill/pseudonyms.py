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
        keys = [hmac.new(key.encode(), _CONTEXT, hashlib.sha256).digest() for key in secret_keys]
        # Keyed once: each pseudonym copies its key's state, not the key set up again (an
        # import makes one a customer, 1.5 -> 1.0 µs).
        self._keyed = [hmac.new(key, digestmod=hashlib.sha256) for key in keys]

    def of(self, value: str) -> str:
        return self._with(self._keyed[-1], value)

    def candidates(self, value: str) -> list[str]:
        return [self._with(keyed, value) for keyed in reversed(self._keyed)]

    @staticmethod
    def _with(keyed: hmac.HMAC, value: str) -> str:
        mac = keyed.copy()
        mac.update(value.encode())
        return mac.hexdigest()[:32]
