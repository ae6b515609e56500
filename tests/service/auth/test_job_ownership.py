"""#14 defects 1 and 12 through the real app (PostgreSQL + Redis): a job belongs to its creator,
idempotency keys are the owner's own and refuse a different request, and one caller's jobs have
a bounded cost."""

from __future__ import annotations

from typing import Any

import pytest
from tests.service.auth.test_auth_attacks import bearer, claims, rs256, signed_headers

pytestmark = pytest.mark.service


def as_user(w: Any, user_id: int, *roles: str) -> dict[str, str]:
    return bearer(rs256(w, claims(w, sub=str(user_id), roles=list(roles), name=f"u{user_id}")))


async def create(client: Any, headers: dict[str, str], **body: Any) -> Any:
    return await client.post("/api/jobs", json={"kind": "echo", **body}, headers=headers)


async def test_a_job_is_invisible_to_everyone_but_its_owner(world: Any) -> None:
    w, client = world
    alice, bob = as_user(w, 1001), as_user(w, 1002)
    job = (await create(client, alice, payload={"secret": "alice's"})).json()["id"]

    mine = await client.get(f"/api/jobs/{job}", headers=alice)
    assert mine.status_code == 200
    assert mine.json()["owner"] == "user:1001"
    for stranger in (bob, signed_headers(w, f"/api/jobs/{job}")):
        response = await client.get(f"/api/jobs/{job}", headers=stranger)
        assert response.status_code == 404, response.text  # not 403: no existence oracle
        assert "alice's" not in response.text
    cancel_path = f"/api/jobs/{job}/cancel"
    refused = await client.post(cancel_path, headers=bob)
    assert refused.status_code == 404
    assert (await client.get(f"/api/jobs/{job}", headers=alice)).json()["status"] == "queued"

    listed = (await client.get("/api/jobs", headers=bob)).json()["items"]
    assert job not in {item["id"] for item in listed}
    assert job in {i["id"] for i in (await client.get("/api/jobs", headers=alice)).json()["items"]}
    assert (await client.post(cancel_path, headers=alice)).json()["status"] == "cancelled"


async def test_admins_see_everything_only_when_they_ask(world: Any) -> None:
    w, client = world
    alice, admin = as_user(w, 1101), as_user(w, 1102, "admin")
    job = (await create(client, alice)).json()["id"]
    assert (await client.get(f"/api/jobs/{job}", headers=admin)).status_code == 200
    own = (await client.get("/api/jobs", headers=admin)).json()["items"]
    assert job not in {item["id"] for item in own}
    everyone = (await client.get("/api/jobs?all=true", headers=admin)).json()["items"]
    assert job in {item["id"] for item in everyone}
    assert (await client.get("/api/jobs?all=true", headers=alice)).status_code == 403


async def test_idempotency_keys_are_scoped_to_the_owner(world: Any) -> None:
    w, client = world
    alice, bob = as_user(w, 1201), as_user(w, 1202)
    first = (await create(client, alice, payload={"n": 1}, idempotency_key="k-1")).json()
    again = (await create(client, alice, payload={"n": 1}, idempotency_key="k-1")).json()
    assert (again["id"], again["created"]) == (first["id"], False)

    theirs = (await create(client, bob, payload={"n": 1}, idempotency_key="k-1")).json()
    assert theirs["created"] is True
    assert theirs["id"] != first["id"]  # bob never gets alice's job back


@pytest.mark.parametrize(
    ("change", "what"),
    [({"payload": {"n": 2}}, "payload"), ({"kind": "sleep", "payload": {"seconds": 0}}, "kind")],
)
async def test_reusing_a_key_for_another_request_is_422(
    world: Any, change: dict[str, Any], what: str
) -> None:
    w, client = world
    alice = as_user(w, 1301)
    await create(client, alice, payload={"n": 1}, idempotency_key="k-2")
    response = await client.post(
        "/api/jobs", json={"kind": "echo", "idempotency_key": "k-2", **change}, headers=alice
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "idempotency key 'k-2' was used for a different request" in detail
    assert f"its {what} differs" in detail


async def test_one_callers_jobs_have_a_bounded_cost(make_world: Any) -> None:
    w, client = await make_world(
        JOB_MAX_ACTIVE_PER_OWNER="2", JOB_MAX_SLEEP_SECONDS="5", JOB_MAX_CHECKSUM_MEBIBYTES="8"
    )
    alice, bob = as_user(w, 1401), as_user(w, 1402)
    for _ in range(2):
        assert (await create(client, alice)).status_code == 202
    over = await create(client, alice)
    assert over.status_code == 429, over.text
    assert "JOB_MAX_ACTIVE_PER_OWNER" in over.json()["detail"]
    assert int(over.headers["retry-after"]) >= 1
    assert (await create(client, bob)).status_code == 202  # the limit is per owner

    hour = await create(client, bob, kind="sleep", payload={"seconds": 3600})
    assert hour.status_code == 422
    assert "JOB_MAX_SLEEP_SECONDS (5)" in hour.json()["detail"]
    big = await create(client, bob, kind="checksum", payload={"mebibytes": 4096})
    assert big.status_code == 422
    assert "JOB_MAX_CHECKSUM_MEBIBYTES (8)" in big.json()["detail"]
