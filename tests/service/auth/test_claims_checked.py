"""#14 defect 10: a correctly signed token is still checked claim by claim (type and range)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.service.auth.test_auth_attacks import assert_refused, bearer, claims, rs256

pytestmark = pytest.mark.service


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"sub": "1" * 30}, id="sub-beyond-64-bits"),
        pytest.param({"sub": "0"}, id="sub-zero"),
        pytest.param({"sub": str(2**63)}, id="sub-just-beyond-int64"),
        pytest.param({"iat": True}, id="iat-true"),
        pytest.param({"nbf": False}, id="nbf-false"),
        pytest.param({"exp": 1e300}, id="exp-huge-float"),
        pytest.param({"iat": "1700000000"}, id="iat-string"),
    ],
)
async def test_signed_tokens_with_insane_claims_are_401(world: Any, change: dict[str, Any]) -> None:
    w, client = world
    token = rs256(w, claims(w, **change))
    for path in ("/api/users/me", "/api/jobs"):
        assert_refused(await client.get(path, headers=bearer(token)))


async def test_refresh_token_with_a_huge_subject_is_401(world: Any) -> None:
    w, client = world
    token = rs256(w, claims(w, sub="9" * 30, use="refresh"))
    response = await client.post("/api/auth/refresh", json={"refresh_token": token})
    assert_refused(response)
