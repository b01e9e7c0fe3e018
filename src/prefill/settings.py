"""Typed settings, read from `PREFILL_*` environment variables by `Settings.from_env()`.

Tests and the CLI build `Settings` directly; nothing is read at import time.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import msgspec

from prefill.ratelimit import Limit, RateLimits, parse_proxies

MIN_SECRET_LENGTH = 32
MAKE_A_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
FILE_SUFFIX = "_FILE"
SECRET_VARIABLES = ("PREFILL_SECRET_KEYS", "PREFILL_REDIS_URL")
"""Settings that hold a secret (signing keys; a Redis URL can carry a password): each may come
from a file named by `<NAME>_FILE` instead, as Docker and Kubernetes secrets are mounted."""


class SettingsError(ValueError):
    """The environment does not describe a runnable service; the message says which variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    secret_keys: list[str]
    """Link signing keys, oldest first: the last one signs, every one verifies (rotation)."""
    organization: str = ""
    """The company's name, shown on pages and in contact cards."""
    public_url: str = "http://127.0.0.1:8000"
    """Base URL that minted links point to (scheme, host, optional port and path prefix)."""
    redis_url: str | None = None
    """Redis to use; None starts a private embedded redis-server in `data_dir`."""
    redis_cluster: bool = False
    """`redis_url` names one node of a Redis Cluster: use the cluster client (store/client.py)."""
    data_dir: str = "prefill-data"
    """Where the embedded Redis keeps its append-only file."""
    max_link_age_days: Annotated[int, msgspec.Meta(ge=1)] = 365
    """Upper bound for any link, whatever its campaign says."""
    redis_timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 0.5
    """Socket and connect timeout: a slow Redis is treated as down (fail closed), not waited on."""
    redis_retries: Annotated[int, msgspec.Meta(ge=0)] = 1
    """Retries of a Redis call on a connection error that comes at once (a connection that died
    with a restarted server), never on one that took a timeout (store/client.py QuickRetry)."""
    audit_retention_days: Annotated[int, msgspec.Meta(ge=1)] = 400
    """Audit entries and refusal counts older than this are removed (by age, never by count)."""
    customer_retention_days: Annotated[int, msgspec.Meta(ge=1)] = 1095
    """`prefill retention` erases customers whose record has not changed for this long."""
    admin_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    """Serve the admin API only on this port (keep it off the public network); None serves it
    under /admin on the main port. It always needs an API key."""
    allowed_hosts: list[str] = msgspec.field(default_factory=lambda: ["*"])
    """Host headers the service answers to (Litestar's allowed-hosts check)."""
    scanner_window_seconds: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    """A link used this soon after it was signed counts as a scanner's hit, never as an open:
    mail gateways fetch links on delivery, faster than anyone reads (0 turns this off)."""

    rate_limits: bool = True
    """Rate limits in Redis against token guessing and hammering (ratelimit.py). Off only for
    load tests and benchmarks, never in production."""
    rate_limit_window_seconds: Annotated[int, msgspec.Meta(ge=1)] = 600
    """The window every limit counts in."""
    refused_links_per_address: Annotated[int, msgspec.Meta(ge=1)] = 200
    """Links refused without a valid signature, per client address and window (guessing)."""
    requests_per_link: Annotated[int, msgspec.Meta(ge=1)] = 100
    """Requests of one validly signed link per window (one link hammered)."""
    admin_failures_per_address: Annotated[int, msgspec.Meta(ge=1)] = 20
    """Admin API keys refused per client address and window (key guessing)."""
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    """Addresses or CIDR blocks of the proxies whose `X-Forwarded-For` is believed."""

    def __post_init__(self) -> None:
        try:
            parse_proxies(self.trusted_proxies)
        except ValueError as exc:
            raise SettingsError(f"PREFILL_TRUSTED_PROXIES: {exc}") from None
        if self.audit_retention_days < self.max_link_age_days:
            # Erasure tombstones live as long as the audit; a link must not outlive them.
            raise SettingsError(
                "PREFILL_AUDIT_RETENTION_DAYS must be at least PREFILL_MAX_LINK_AGE_DAYS "
                f"({self.audit_retention_days} < {self.max_link_age_days}): an erased "
                "customer's links must not outlive the record that keeps them dead"
            )
        if not self.secret_keys:
            # `prefill mint` run apart from the service gets here: a key of its own would sign
            # links that the service refuses.
            raise SettingsError(
                "PREFILL_SECRET_KEYS: at least one signing key is required, the service's own "
                "(or PREFILL_SECRET_KEYS_FILE): links must verify on the service that opens "
                f"them. Make a key for a new service with: {MAKE_A_KEY}"
            )
        for key in self.secret_keys:
            if len(key) < MIN_SECRET_LENGTH:
                raise SettingsError(
                    f"PREFILL_SECRET_KEYS: every key must have at least {MIN_SECRET_LENGTH} "
                    f"characters (generate one with: {MAKE_A_KEY})"
                )

    @property
    def rate_policy(self) -> RateLimits:
        window = self.rate_limit_window_seconds
        return RateLimits(
            enabled=self.rate_limits,
            refused_links=Limit(self.refused_links_per_address, window),
            link_requests=Limit(self.requests_per_link, window),
            admin_failures=Limit(self.admin_failures_per_address, window),
            trusted_proxies=parse_proxies(self.trusted_proxies),
        )

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def max_link_age_seconds(self) -> int:
        return self.max_link_age_days * 86_400

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, /, **overrides: object) -> Settings:
        """Settings from `PREFILL_*` variables; `overrides` (e.g. CLI options) win."""
        env = with_secret_files(os.environ if env is None else env)
        values: dict[str, object] = {}
        if keys := env.get("PREFILL_SECRET_KEYS"):
            values["secret_keys"] = [k.strip() for k in keys.split(",") if k.strip()]
        if hosts := env.get("PREFILL_ALLOWED_HOSTS"):
            values["allowed_hosts"] = [h.strip() for h in hosts.split(",") if h.strip()]
        if proxies := env.get("PREFILL_TRUSTED_PROXIES"):
            values["trusted_proxies"] = [p.strip() for p in proxies.split(",") if p.strip()]
        if switch := env.get("PREFILL_RATE_LIMITS"):
            if switch.strip().lower() not in ("on", "off"):
                raise SettingsError(f"PREFILL_RATE_LIMITS: 'on' or 'off', not {switch!r}")
            values["rate_limits"] = switch.strip().lower() == "on"
        if cluster := env.get("PREFILL_REDIS_CLUSTER"):
            if cluster.strip().lower() not in ("1", "0", "on", "off"):
                raise SettingsError(f"PREFILL_REDIS_CLUSTER: '1' or '0', not {cluster!r}")
            values["redis_cluster"] = cluster.strip().lower() in ("1", "on")
        scalar_names: dict[str, type] = {
            "organization": str,
            "public_url": str,
            "redis_url": str,
            "data_dir": str,
            "max_link_age_days": int,
            "redis_timeout_seconds": float,
            "redis_retries": int,
            "audit_retention_days": int,
            "customer_retention_days": int,
            "admin_port": int,
            "scanner_window_seconds": float,
            "rate_limit_window_seconds": int,
            "refused_links_per_address": int,
            "requests_per_link": int,
            "admin_failures_per_address": int,
        }
        for name, kind in scalar_names.items():
            raw = env.get(f"PREFILL_{name.upper()}")
            if raw:
                try:
                    values[name] = kind(raw)
                except ValueError as exc:
                    raise SettingsError(f"PREFILL_{name.upper()}: {exc}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        values.setdefault("secret_keys", [])
        try:
            settings = msgspec.convert(values, cls, from_attributes=False, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(str(exc)) from exc
        if settings.redis_cluster and settings.redis_url is None:
            raise SettingsError(
                "a Redis Cluster (--redis-cluster or PREFILL_REDIS_CLUSTER=1) needs a Redis URL "
                "(--redis-url or PREFILL_REDIS_URL) naming one of the cluster's nodes"
            )
        return settings


def with_secret_files(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with each secret variable read from the file its `_FILE` variable names, if any.
    Both set is an error: which one wins would be a guess."""
    resolved = dict(env)
    for name in SECRET_VARIABLES:
        path = env.get(name + FILE_SUFFIX)
        if not path:
            continue
        if env.get(name):
            raise SettingsError(f"{name} and {name}{FILE_SUFFIX} are both set: set only one")
        try:
            resolved[name] = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise SettingsError(f"{name}{FILE_SUFFIX}: cannot read {path}: {reason}") from exc
        if not resolved[name]:
            raise SettingsError(f"{name}{FILE_SUFFIX}: {path} is empty")
    return resolved


def load_or_create_secret(data_dir: Path) -> str:
    """A signing key kept in `data_dir`, so demo links keep working across restarts."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key)
    return key
