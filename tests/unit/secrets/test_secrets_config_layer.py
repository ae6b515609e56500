"""The secrets layer of keel.config, through the real decryption path and the committed test key."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest
from loguru import logger
from tests.support import REPO

from keel.cli import main
from keel.config import ConfigError, load, load_with_sources
from keel.secrets import KeyPlan, encrypt_bytes
from keel.secrets.age_keys import generate, public_of

TEST_KEY = REPO / "secrets" / "keys" / "test.agekey"
DB_SECRET = "db-from-sops-7f3a9c2e1b"
NESTED_SECRET = "redis-nested-4c8d2a9f"


def _test_recipient() -> str:
    line = next(
        line for line in TEST_KEY.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1")
    )
    return public_of(line)


@pytest.fixture
def tmp_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """configs/ and the committed keys, with a secrets/test.yaml written for these tests."""
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    shutil.copytree(REPO / "secrets" / "keys", tmp_path / "secrets" / "keys")
    (tmp_path / "configs" / "test" / "app.env").write_text(
        (REPO / "configs" / "test" / "app.env").read_text()
        + "DB_PASSWORD=from-app-env-plain\n"
        + "JWT_SECRET_KEY=app-env-jwt-key-aaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
    )
    plain = (
        f"DB_PASSWORD: {DB_SECRET}\n"
        f"REDIS:\n    PASSWORD: {NESTED_SECRET}\n"
        "JWT_SECRET_KEY: jwt-from-sops-0123456789abcdefghijklmnopqrstuv\n"
    ).encode()
    encrypted = encrypt_bytes(plain, "yaml", plan=KeyPlan.single([_test_recipient()]))
    (tmp_path / "secrets" / "test.yaml").write_bytes(encrypted)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "XDG_CONFIG_HOME", "DB_PASSWORD", "APP_ENV"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _environ(tmp_repo: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(tmp_repo / "home"), **extra}


def test_secrets_override_app_env(tmp_repo: Path) -> None:
    loaded = load_with_sources("test", root=tmp_repo, environ=_environ(tmp_repo))
    assert loaded.settings.db.password.reveal() == DB_SECRET
    assert loaded.sources["DB_PASSWORD"].layer == "secrets"
    # nested maps flatten onto setting names
    assert loaded.settings.redis.password.reveal() == NESTED_SECRET
    assert loaded.sources["REDIS_PASSWORD"].layer == "secrets"
    assert {DB_SECRET, NESTED_SECRET} <= loaded.settings.secret_values


def test_process_env_beats_secrets(tmp_repo: Path) -> None:
    settings = load("test", root=tmp_repo, environ=_environ(tmp_repo, DB_PASSWORD="from-env"))
    assert settings.db.password.reveal() == "from-env"
    # the decrypted value is still registered for redaction
    assert DB_SECRET in settings.secret_values


def test_config_show_masks_unless_reveal(
    tmp_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEEL_ROOT", str(tmp_repo))
    assert main(["config", "show", "--env", "test"]) == 0
    shown = capsys.readouterr().out
    assert DB_SECRET not in shown
    assert NESTED_SECRET not in shown
    assert re.search(r"DB_PASSWORD\s+\*\*\*\*\(\d+ chars\)\s+# secrets", shown)
    assert main(["config", "show", "--env", "test", "--reveal"]) == 0
    assert DB_SECRET in capsys.readouterr().out


def test_decrypted_values_never_reach_the_logs(tmp_repo: Path) -> None:
    settings = load("test", root=tmp_repo, environ=_environ(tmp_repo))
    from keel.logging import configure_logging, redact

    buffer = io.StringIO()
    configure_logging(settings, stream=buffer)
    try:
        logger.info(f"connecting with password {settings.db.password.reveal()}")
        logger.bind(extra_field=NESTED_SECRET).warning("redis auth {}", NESTED_SECRET)
    finally:
        logger.remove()
        redact.clear()
    output = buffer.getvalue()
    assert "connecting with password" in output
    assert DB_SECRET not in output
    assert NESTED_SECRET not in output


def test_missing_identity_is_one_config_problem_naming_the_fix(tmp_repo: Path) -> None:
    _, dev_recipient = generate()
    (tmp_repo / "secrets" / "dev.yaml").write_bytes(
        encrypt_bytes(b"DB_PASSWORD: x\n", "yaml", plan=KeyPlan.single([dev_recipient]))
    )
    with pytest.raises(ConfigError) as info:
        load("dev", root=tmp_repo, environ=_environ(tmp_repo))
    problem = next(p for p in info.value.problems if "dev.yaml" in p)
    assert "\n" not in problem
    assert "make secrets-init ENV=dev" in problem
    assert "keel secrets init dev" in problem
    assert dev_recipient[:16] in problem


def test_tampered_secrets_file_is_a_config_problem(tmp_repo: Path) -> None:
    path = tmp_repo / "secrets" / "test.yaml"
    path.write_text(path.read_text().replace('lastmodified: "2', 'lastmodified: "1', 1))
    with pytest.raises(ConfigError, match=r"test\.yaml: MAC mismatch"):
        load("test", root=tmp_repo, environ=_environ(tmp_repo))


def test_sops_age_key_file_is_used_for_other_envs(tmp_repo: Path) -> None:
    identity, recipient = generate()
    key_file = tmp_repo / "run-secrets-age-key"
    key_file.write_text(identity + "\n")
    (tmp_repo / "secrets" / "dev.yaml").write_bytes(
        encrypt_bytes(
            f"DB_PASSWORD: {DB_SECRET}\n".encode(), "yaml", plan=KeyPlan.single([recipient])
        )
    )
    settings = load(
        "dev", root=tmp_repo, environ=_environ(tmp_repo, SOPS_AGE_KEY_FILE=str(key_file))
    )
    assert settings.db.password.reveal() == DB_SECRET


def test_committed_repo_secrets_load_for_test_and_local() -> None:
    for env in ("test", "local"):
        settings = load(env, root=REPO, environ={"HOME": "/nonexistent"})
        assert len(settings.auth.jwt_secret_key) >= 32
