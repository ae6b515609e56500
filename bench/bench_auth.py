"""Auth cost: authenticated endpoints vs the unauthenticated /health/live, one Granian worker,
real PostgreSQL + Redis (throwaway servers from tests/service/servers.py).

Reported: req/s of /health/live, /api/auth/whoami (auth only, no database), /api/users/me
(JWT) and GET /api/jobs/{id} (signed; and with a JWT), each signed request with its own nonce
(pre-signed and replayed by a wrk Lua script). Target: auth costs <= 20 % (whoami vs live).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backing import keel_env, postgres_and_redis
from loadgen import GRANIAN, LoadResult, free_port, running, wrk

from keel.auth.signatures import sign_request

SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = 32
PASSWORD = "bench-password-not-secret"


def keel(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    keel_bin = str(Path(sys.executable).with_name("keel"))
    done = subprocess.run(
        [keel_bin, *args], env=env, input=stdin, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"keel {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def presigned_script(path: str, key: dict[str, str], count: int, directory: Path) -> str:
    """A wrk script sending ``count`` distinct signed GETs of ``path`` (one nonce each)."""
    name = f"signed-{len(list(directory.glob('signed-*')))}"
    data = directory / f"{name}.tsv"
    with data.open("w") as out:
        for _ in range(count):
            h = sign_request(key_id=key["key_id"], secret=key["secret"], method="GET", path=path)
            values = (h["X-Keel-Key-Id"], h["X-Keel-Timestamp"], h["X-Keel-Nonce"])
            out.write("\t".join((*values, h["X-Keel-Signature"])) + "\n")
    script = directory / f"{name}.lua"
    script.write_text(
        f"""
local r = {{}}
for line in io.lines("{data}") do
  local k, t, n, s = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)")
  r[#r + 1] = {{["X-Keel-Key-Id"] = k, ["X-Keel-Timestamp"] = t,
               ["X-Keel-Nonce"] = n, ["X-Keel-Signature"] = s}}
end
local i = 0
request = function()
  i = i + 1
  if i > #r then i = 1 end -- only if the run outlasts the batch: replays, counted as non-2xx
  return wrk.format("GET", "{path}", r[i])
end
"""
    )
    return str(script)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="keel-bench-auth-"))
    with postgres_and_redis(work / "redis") as backing:
        run(backing, work)


def run(backing: dict[str, str], work: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = keel_env(
        backing,
        {
            "LOG_LEVEL": "INFO",
            "HTTP_PORT": str(port),
            "AUTH_LOGIN_PER_IP_PER_MINUTE": "1000",
        },
    )
    keel(["migrate"], env)
    password_file = work / "pw"
    password_file.write_text(PASSWORD + "\n")
    keel(["users", "create", "bench", "--password-file", str(password_file)], env)
    key = json.loads(keel(["apikeys", "create", "bench", "--json"], env))

    import urllib.request

    cmd = [*GRANIAN, "--port", str(port), "--factory", "keel.app:app_factory"]
    with running(cmd, f"{base}/health/live", env):
        login = urllib.request.Request(
            f"{base}/api/auth/login",
            data=json.dumps({"username": "bench", "password": PASSWORD}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(login) as response:
            token = json.loads(response.read())["access_token"]
        bearer = [f"Authorization: Bearer {token}"]
        job_request = urllib.request.Request(
            f"{base}/api/jobs",
            data=b'{"kind": "echo", "payload": {}}',
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(job_request) as response:
            job_path = f"/api/jobs/{json.loads(response.read())['id']}"
        # A job of the API key's own: a signed caller sees only its jobs (others' are 404).
        body = b'{"kind": "echo", "payload": {}}'
        signed_headers = sign_request(
            key_id=key["key_id"], secret=key["secret"], method="POST", path="/api/jobs", body=body
        )
        key_job_request = urllib.request.Request(
            f"{base}/api/jobs",
            data=body,
            headers={"Content-Type": "application/json", **signed_headers},
        )
        with urllib.request.urlopen(key_job_request) as response:
            key_job_path = f"/api/jobs/{json.loads(response.read())['id']}"
        endpoints = {
            "/health/live (no auth)": ("/health/live", "none"),
            "/api/auth/whoami JWT": ("/api/auth/whoami", "jwt"),
            "/api/auth/whoami signed": ("/api/auth/whoami", "sig"),
            "/api/users/me JWT": ("/api/users/me", "jwt"),
            "GET /api/jobs/{id} JWT": (job_path, "jwt"),
            "GET /api/jobs/{id} signed": (key_job_path, "sig"),
        }
        only = os.environ.get("BENCH_ONLY")  # e.g. "jobs": just the endpoints whose label has it
        if only:
            endpoints = {k: v for k, v in endpoints.items() if only in k}
        best: dict[str, LoadResult] = {}
        wrk(f"{base}/health/live", seconds=1, connections=CONNECTIONS)  # warm up
        wrk(f"{base}/api/users/me", seconds=1, connections=CONNECTIONS, headers=bearer)
        # Best of ROUNDS, interleaved: other load on the machine only ever lowers a figure.
        for _ in range(ROUNDS):
            for label, (path, scheme) in endpoints.items():
                if scheme == "sig":  # every signed request needs its own nonce: a fresh batch
                    script = presigned_script(path, key, 12_000 * SECONDS, work)
                    kwargs: dict[str, object] = {"script": script}
                else:
                    kwargs = {"headers": bearer if scheme == "jwt" else []}
                result = wrk(
                    f"{base}{path}",
                    seconds=SECONDS,
                    connections=CONNECTIONS,
                    **kwargs,  # type: ignore[arg-type]
                )
                if (
                    label not in best
                    or result.requests_per_second > best[label].requests_per_second
                ):
                    best[label] = result
    report(best)


def report(best: dict[str, LoadResult]) -> None:
    for label, result in best.items():
        print(result.line(label))

    def us(label: str) -> float:
        return 1e6 / best[label].requests_per_second

    live = "/health/live (no auth)"
    for scheme, whoami, endpoint in (
        ("JWT", "/api/auth/whoami JWT", "/api/users/me JWT"),
        ("signature", "/api/auth/whoami signed", "GET /api/jobs/{id} signed"),
    ):
        if not {whoami, endpoint, live} <= best.keys():
            continue
        auth_us = us(whoami) - us(live)
        trivial = 1 - best[whoami].requests_per_second / best[live].requests_per_second
        print(
            f"{scheme}: auth costs {auth_us:.0f} us/request = {trivial * 100:.0f} % of a trivial "
            f"request (whoami vs /health/live), {auth_us / us(endpoint) * 100:.0f} % of one "
            f"{endpoint} (target <= 20 %)"
        )


if __name__ == "__main__":
    main()
