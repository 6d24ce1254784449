"""API keys, key files, reload, principals, authorization and per-tenant limits (no server)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ragmesh.cli.up import session_key_file
from ragmesh.vocabulary.keys import Grant, KeyFileError, KeyStore, digest, env_entry, new_key, parse_env, toml_entry
from services.common.auth import INVALID, MISSING, Authenticator, AuthSettings
from services.common.config import ConfigError
from services.common.errors import PermissionDenied, Unauthenticated
from services.common.principal import ANONYMOUS, Principal, authorize, scope_key
from services.common.quota import QuotaExceeded, QuotaSettings, TenantLimits


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _grant(key: str, tenant: str = "acme", collections: tuple[str, ...] = ("acme_*",), write: bool = True) -> Grant:
    return Grant(digest(key), tenant, collections, write)


def test_keys_are_random_and_only_their_hash_is_written(tmp_path: Path) -> None:
    key, other = new_key(), new_key()
    assert key != other and key.startswith("rmk_") and len(key) >= 40
    entry = toml_entry(_grant(key))
    assert key not in entry and digest(key) in entry
    path = tmp_path / "keys.toml"
    path.write_text(entry)
    store = KeyStore(path, [])
    found = store.find(key)
    assert found is not None and found.tenant == "acme" and found.collections == ("acme_*",) and found.write
    assert store.find(other) is None


def test_the_env_form_and_json_files_read_the_same_grants(tmp_path: Path) -> None:
    key = new_key()
    grant = _grant(key, "beta", ("docs_*", "shared"), write=False)
    assert parse_env("V", env_entry(grant) + ";\n") == [grant]
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [{**grant.__dict__, "collections": list(grant.collections)}]}))
    assert KeyStore(path).find(key) == grant


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[keys]]\nsha256 = "abc"\ntenant = "a"\ncollections = ["x"]\n', "64 lower-case hex"),
        (f'[[keys]]\nsha256 = "{"a" * 64}"\ntenant = "a b"\ncollections = ["x"]\n', "tenant must be"),
        (f'[[keys]]\nsha256 = "{"a" * 64}"\ntenant = "a"\ncollections = []\n', "non-empty list"),
        (f'[[keys]]\nsha256 = "{"a" * 64}"\ntenant = "a"\ncollections = ["x;drop"]\n', "not a collection"),
        (f'[[keys]]\nsha256 = "{"a" * 64}"\ntenant = "a"\ncollections = ["x"]\nadmin = true\n', "unknown field"),
        ("keys = 3\n", "expected a list"),
        ("[[keys]\n", "not valid TOML"),
    ],
)
def test_a_bad_key_file_is_refused_naming_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(text)
    with pytest.raises(KeyFileError, match=problem):
        KeyStore(path)


def test_settings_name_the_variable_and_auth_is_off_without_keys(tmp_path: Path) -> None:
    assert AuthSettings.from_env("orchestrator", {}).store("orchestrator") is None
    with pytest.raises(ConfigError, match="RAGMESH_ORCHESTRATOR_API_KEYS"):
        AuthSettings.from_env("orchestrator", {"RAGMESH_ORCHESTRATOR_API_KEYS": "nope"}).store("orchestrator")
    missing = {"RAGMESH_ORCHESTRATOR_AUTH_KEYS_FILE": str(tmp_path / "absent.toml")}
    with pytest.raises(ConfigError, match="RAGMESH_ORCHESTRATOR_AUTH_KEYS_FILE"):
        AuthSettings.from_env("orchestrator", missing).store("orchestrator")


def test_the_file_is_reloaded_when_it_changes_and_a_broken_edit_keeps_the_old_keys(tmp_path: Path) -> None:
    first, second = new_key(), new_key()
    path = tmp_path / "keys.toml"
    path.write_text(toml_entry(_grant(first)))
    clock = Clock()
    store = KeyStore(path, [], reload_seconds=5.0, clock=clock)
    path.write_text(toml_entry(_grant(second, "beta")))
    os.utime(path, ns=(1, 1))  # a new mtime whatever the file system's resolution
    store.refresh()
    assert store.find(second) is None, "checked at most once per interval"
    clock.now += 5.0
    store.refresh()
    assert store.find(first) is None
    found = store.find(second)
    assert found is not None and found.tenant == "beta"
    path.write_text("[[keys]\n")
    store.reload()  # SIGHUP
    assert store.find(second) is not None


def test_authenticate_reads_bearer_or_x_api_key_and_tells_missing_from_wrong() -> None:
    key = new_key()
    authenticator = Authenticator(KeyStore(None, [_grant(key)]))
    assert authenticator.authenticate({"Authorization": f"Bearer {key}"}).tenant == "acme"
    assert authenticator.authenticate([("x-api-key", key)]).tenant == "acme"
    for headers, message in [
        ({}, MISSING),
        ({"authorization": "Bearer "}, "unsupported authorization"),
        ({"authorization": f"Basic {key}"}, "unsupported authorization"),
        ({"x-api-key": key + "x"}, INVALID),
    ]:
        with pytest.raises(Unauthenticated) as refused:
            authenticator.authenticate(headers)
        assert message in refused.value.message and key not in refused.value.message
    assert Authenticator(None).authenticate({}) is ANONYMOUS


def test_authorize_by_name_prefix_and_right() -> None:
    reader = Principal("acme", ("acme_*", "shared"), write=False)
    authorize(reader, "acme_docs")
    authorize(reader, "shared")
    with pytest.raises(PermissionDenied, match="read-only"):
        authorize(reader, "acme_docs", write=True)
    with pytest.raises(PermissionDenied, match="may not use collection 'beta_docs'"):
        authorize(reader, "beta_docs")
    with pytest.raises(PermissionDenied):
        authorize(reader, "shared_more")  # a name is not a prefix
    assert reader.visible(["acme_a", "beta_b", "shared"]) == ["acme_a", "shared"]
    authorize(ANONYMOUS, "anything", write=True)
    assert scope_key(reader) != scope_key(Principal("beta", ("*",), True))


def test_the_rate_limit_refills_and_says_when_to_retry() -> None:
    clock = Clock()
    limits = TenantLimits(QuotaSettings(rate=2.0, burst=2), clock)
    limits.take("acme")
    limits.take("acme")
    with pytest.raises(QuotaExceeded) as refused:
        limits.take("acme")
    assert refused.value.retry_after == pytest.approx(0.5)
    assert refused.value.retry_after_header == "1" and "rate limit of 2 requests/s" in refused.value.message
    limits.take("beta")  # another tenant has its own bucket
    clock.now += 0.5
    limits.take("acme")


def test_the_stream_quota_is_released_when_a_stream_ends() -> None:
    limits = TenantLimits(QuotaSettings(streams=1))
    with limits.stream("acme"):
        with pytest.raises(QuotaExceeded, match="already has 1 streams open"), limits.stream("acme"):
            pass
        with limits.stream("beta"):
            assert limits.open_streams("beta") == 1
    assert limits.open_streams("acme") == 0
    with limits.stream("acme"):
        pass


def test_quota_settings_from_env() -> None:
    settings = QuotaSettings.from_env("orchestrator", {"RAGMESH_ORCHESTRATOR_TENANT_RATE": "2.5"})
    assert settings == QuotaSettings(rate=2.5, burst=3, streams=0)
    with pytest.raises(ConfigError, match="RAGMESH_ORCHESTRATOR_TENANT_STREAMS"):
        QuotaSettings.from_env("orchestrator", {"RAGMESH_ORCHESTRATOR_TENANT_STREAMS": "-1"})


def test_up_generates_a_session_key_file_only_its_user_can_read(tmp_path: Path) -> None:
    path, key = session_key_file(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert key not in path.read_text()
    found = KeyStore(path).find(key)
    assert found == Grant(digest(key), "default", ("*",), write=True)
