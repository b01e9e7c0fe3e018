"""Admin API keys: how they look, how they are checked, and what each scope allows.

A key is shown once, at creation: `pfk_<id>_<secret>`. Redis keeps only the id, the scopes and a
SHA-256 digest of the secret. The secret is 256 random bits, so a fast hash is enough: nobody
can guess their way back from the digest, and checking costs one hash, not a slow KDF.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import time

import msgspec

from prefill.models import ShortText

KEY_PREFIX = "pfk_"
_KEY_PATTERN = re.compile(r"^pfk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class Scope(enum.StrEnum):
    """What a key may do. Each admin route names the one scope it needs."""

    READ = "read"
    """Read records, consent, audit and exports."""
    DATA = "data"
    """Create, change and delete customers, contact persons, forms and campaigns; mint links."""
    CONSENT = "consent"
    """Grant and withdraw consent on a customer's behalf."""
    ERASE = "erase"
    """Erase a customer (GDPR Art. 17)."""
    KEYS = "keys"
    """Create, list and revoke API keys."""
    METRICS = "metrics"
    """Scrape /metrics: counts and latencies, nothing personal (a key for Prometheus)."""


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A stored key: everything but the secret."""

    id: str
    name: ShortText
    scopes: list[Scope]
    created_at: float
    digest: str


class NewApiKey(msgspec.Struct, frozen=True):
    """A freshly created key; `secret` is the whole key and is never stored."""

    key: ApiKey
    secret: str


def create_key(name: str, scopes: list[Scope]) -> NewApiKey:
    key_id = secrets.token_hex(6)
    secret_part = secrets.token_urlsafe(32)
    key = ApiKey(
        id=key_id,
        name=name,
        scopes=sorted(set(scopes)),
        created_at=time.time(),
        digest=_digest(secret_part),
    )
    return NewApiKey(key=key, secret=f"{KEY_PREFIX}{key_id}_{secret_part}")


def parse_key(presented: str) -> tuple[str, str] | None:
    """(key id, secret part) of a well-formed key, else None."""
    match = _KEY_PATTERN.match(presented)
    return (match.group(1), match.group(2)) if match else None


def matches(key: ApiKey, secret_part: str) -> bool:
    # Constant time, so response timing says nothing about how much of a guess was right.
    return hmac.compare_digest(key.digest, _digest(secret_part))


def _digest(secret_part: str) -> str:
    return hashlib.sha256(secret_part.encode()).hexdigest()
