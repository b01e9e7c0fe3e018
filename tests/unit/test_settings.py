"""Settings from the environment, and secrets from files (the Docker/Kubernetes `_FILE` way)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefill.settings import Settings, SettingsError

KEY = "k" * 40
OLD_KEY = "o" * 40


def test_secret_keys_come_from_a_mounted_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret_keys"
    secret.write_text(f"{OLD_KEY},{KEY}\n")  # `echo … > file` leaves a newline
    settings = Settings.from_env({"PREFILL_SECRET_KEYS_FILE": str(secret)})
    assert settings.secret_keys == [OLD_KEY, KEY]


def test_the_redis_url_comes_from_a_file(tmp_path: Path) -> None:
    url = tmp_path / "redis_url"
    url.write_text("redis://:s3cret@redis:6379/0\n")
    settings = Settings.from_env({"PREFILL_SECRET_KEYS": KEY, "PREFILL_REDIS_URL_FILE": str(url)})
    assert settings.redis_url == "redis://:s3cret@redis:6379/0"


def test_a_variable_and_its_file_both_set_is_an_error(tmp_path: Path) -> None:
    secret = tmp_path / "secret_keys"
    secret.write_text(KEY)
    env = {"PREFILL_SECRET_KEYS": KEY, "PREFILL_SECRET_KEYS_FILE": str(secret)}
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert str(raised.value) == (
        "PREFILL_SECRET_KEYS and PREFILL_SECRET_KEYS_FILE are both set: set only one"
    )


def test_a_missing_file_names_the_variable_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"PREFILL_SECRET_KEYS_FILE": str(missing)})
    assert str(raised.value) == (
        f"PREFILL_SECRET_KEYS_FILE: cannot read {missing}: No such file or directory"
    )


def test_an_empty_file_is_an_error_not_an_empty_key(tmp_path: Path) -> None:
    empty = tmp_path / "secret_keys"
    empty.write_text("\n")
    with pytest.raises(SettingsError, match=f"PREFILL_SECRET_KEYS_FILE: {empty} is empty"):
        Settings.from_env({"PREFILL_SECRET_KEYS_FILE": str(empty)})


def test_a_short_key_from_a_file_is_refused_like_one_from_the_variable(tmp_path: Path) -> None:
    short = tmp_path / "secret_keys"
    short.write_text("too-short")
    with pytest.raises(SettingsError, match="at least 32 characters"):
        Settings.from_env({"PREFILL_SECRET_KEYS_FILE": str(short)})


def test_settings_that_hold_no_secret_take_no_file(tmp_path: Path) -> None:
    organization = tmp_path / "organization"
    organization.write_text("From a file Oy")
    settings = Settings.from_env(
        {"PREFILL_SECRET_KEYS": KEY, "PREFILL_ORGANIZATION_FILE": str(organization)}
    )
    assert settings.organization == ""


def test_cluster_mode_names_one_node_of_the_cluster() -> None:
    env = {"PREFILL_SECRET_KEYS": KEY, "PREFILL_REDIS_URL": "redis://10.0.0.5:7000/0"}
    assert Settings.from_env(env | {"PREFILL_REDIS_CLUSTER": "1"}).redis_cluster
    assert not Settings.from_env(env | {"PREFILL_REDIS_CLUSTER": "0"}).redis_cluster
    assert not Settings.from_env(env).redis_cluster
    with pytest.raises(SettingsError, match="PREFILL_REDIS_CLUSTER: '1' or '0', not 'yes'"):
        Settings.from_env(env | {"PREFILL_REDIS_CLUSTER": "yes"})
    with pytest.raises(
        SettingsError, match=r"needs a Redis URL \(--redis-url or PREFILL_REDIS_URL\)"
    ):
        Settings.from_env({"PREFILL_SECRET_KEYS": KEY, "PREFILL_REDIS_CLUSTER": "1"})
