"""`keel users …` and `keel apikeys …` on real PostgreSQL and Redis, checked through the API.

What an operator checks after each command: the login it should allow works, the one it should
refuse is refused, a lockout is lifted, and a listing never shows a secret.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from keel.app import create_app
from tests.service.conftest import KEEL, make_settings, process_env

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a different long passphrase"
MASTER = {"API_KEY_ENCRYPTION_KEY": "service-test-api-key-master-0123456789"}


def keel(env: dict[str, str], *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEEL, *argv],
        env=process_env({**env, **MASTER}),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def api(stack_env: dict[str, str]) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(make_settings({**stack_env, **MASTER}))) as client:
        yield client


def login(api: TestClient[Any], username: str, password: str) -> int:
    response = api.post("/api/auth/login", json={"username": username, "password": password})
    return response.status_code


def test_disable_enable_and_set_password_take_effect_at_login(
    stack_env: dict[str, str], api: TestClient[Any], tmp_path: Path
) -> None:
    created = keel(stack_env, "users", "create", "carol", "--password-file", "-", stdin=PASSWORD)
    assert created.returncode == 0, created.stderr
    assert login(api, "carol", PASSWORD) == 200

    disabled = keel(stack_env, "users", "disable", "carol")
    assert disabled.returncode == 0, disabled.stderr
    assert "disabled user carol" in disabled.stdout
    assert login(api, "carol", PASSWORD) == 401
    listing = json.loads(keel(stack_env, "users", "list", "--json").stdout)
    assert [(u["username"], u["active"]) for u in listing] == [("carol", False)]

    assert keel(stack_env, "users", "enable", "carol").returncode == 0
    assert login(api, "carol", PASSWORD) == 200

    changed = keel(stack_env, "users", "set-password", "carol", "--password-file", "-",
                   stdin=NEW_PASSWORD)  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert login(api, "carol", PASSWORD) == 401
    assert login(api, "carol", NEW_PASSWORD) == 200

    table = keel(stack_env, "users", "list").stdout.splitlines()
    assert table[0].split() == ["USERNAME", "ID", "ROLES", "ACTIVE", "CREATED"]
    assert table[1].split()[0] == "carol"
    assert all(PASSWORD not in line and NEW_PASSWORD not in line for line in table)


def test_unlock_lifts_a_login_lockout(stack_env: dict[str, str], api: TestClient[Any]) -> None:
    assert keel(stack_env, "users", "create", "dave", "--password-file", "-",
                stdin=PASSWORD).returncode == 0  # fmt: skip
    statuses = [login(api, "dave", "wrong password, long enough") for _ in range(6)]
    assert statuses[-1] == 429, statuses
    assert login(api, "dave", PASSWORD) == 429  # locked out: even the right password

    unlocked = keel(stack_env, "users", "unlock", "dave")
    assert unlocked.returncode == 0, unlocked.stderr
    assert "unlocked dave: cleared" in unlocked.stdout
    assert login(api, "dave", PASSWORD) == 200
    again = keel(stack_env, "users", "unlock", "dave")
    assert "had no failed logins on record" in again.stdout


def test_unknown_user_is_one_line(stack_env: dict[str, str]) -> None:
    result = keel(stack_env, "users", "disable", "nobody")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: no user named 'nobody' (`uv run keel users list` shows them)"
    )


def test_apikeys_list_shows_keys_but_never_their_secret(stack_env: dict[str, str]) -> None:
    created = keel(stack_env, "apikeys", "create", "reports", "--role", "reader", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    listing = keel(stack_env, "apikeys", "list")
    assert key["key_id"] in listing.stdout
    assert key["secret"] not in listing.stdout + listing.stderr
    as_json = json.loads(keel(stack_env, "apikeys", "list", "--json").stdout)
    assert as_json == [
        {
            "name": "reports",
            "key_id": key["key_id"],
            "roles": ["reader"],
            "active": True,
            "created_at": as_json[0]["created_at"],
        }
    ]
    assert keel(stack_env, "apikeys", "disable", "reports").returncode == 0
    assert json.loads(keel(stack_env, "apikeys", "list", "--json").stdout)[0]["active"] is False
