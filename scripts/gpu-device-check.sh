#!/usr/bin/env bash
# Real-GPU check of keel.gpu (issue 8): run on an NVIDIA host from the repository root.
#
#   scripts/gpu-device-check.sh                   # on the GPU host; < 4 minutes; exit 0 = all passed
#   scripts/gpu-device-check.sh --prepare-wheels  # here, with PyPI: var/gpu-wheels for an offline host
#   scripts/gpu-device-check.sh --rehearse h100x1 # anywhere: the same run against a fake NVML fixture
#
# Python environment on the GPU host, first that applies:
#   1. var/gpu-wheels/*.whl present (made by --prepare-wheels; carry the folder): installed with
#      pip --no-index into /tmp/keel-site and run with python3 (>= 3.11) and PYTHONPATH=src.
#      For hosts with no package index; packages the host image already has are not carried.
#   2. otherwise uv (pip-installed if missing), `uv sync --frozen`, `uv run`: needs PyPI.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
WHEELS=var/gpu-wheels
PY_VERSION=${GPU_CHECK_PYTHON:-3.12}
# Already in the NVIDIA device image (KINDS.md, 2026-11); not carried, to stay under 64 MiB.
HOST_PROVIDES="psutil nvidia-ml-py uvloop pyyaml rich pygments typing-extensions click markupsafe
certifi idna anyio h11 httpx httpcore aiohttp aiosignal aiohappyeyeballs frozenlist multidict yarl
propcache attrs six mdurl markdown-it-py"

section() { printf '\n===== %s =====\n' "$*"; }

prepare_wheels() {
    local req
    req=$(mktemp)
    rm -rf "$WHEELS" && mkdir -p "$WHEELS"
    uv export --frozen --no-dev --no-hashes --no-emit-project --format requirements-txt \
        | grep -E '^[A-Za-z0-9]' >"$req.all" || return 1
    : >"$req"
    while IFS= read -r line; do
        name=${line%%[=; ]*}
        case " $(echo $HOST_PROVIDES) gpustat " in
            *" $name "*) echo "not carried: $line" ;;
            *) echo "$line" >>"$req" ;;
        esac
    done <"$req.all"
    # The host's pip config may name local mirrors; fetch from PyPI only.
    export PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS=
    local platforms=()
    for tag in manylinux_2_{5,17,24,27,28,31,34}_x86_64 manylinux1_x86_64 manylinux2014_x86_64 any; do
        platforms+=(--platform "$tag")
    done
    python3 -m pip download -q --no-deps --index-url https://pypi.org/simple --only-binary=:all: \
        --python-version "$PY_VERSION" --implementation cp --abi "cp${PY_VERSION/./}" \
        "${platforms[@]}" -d "$WHEELS" -r "$req" || return 1
    # gpustat publishes only an sdist; it is pure Python, so build its wheel here.
    python3 -m pip wheel -q --index-url https://pypi.org/simple --no-deps -w "$WHEELS" \
        "$(grep -E '^gpustat==' "$req.all" | cut -d' ' -f1)" || return 1
    rm -f "$req" "$req.all"
    sha256sum uv.lock >"$WHEELS/uv.lock.sha256"
    du -sh "$WHEELS"
    echo "carry $WHEELS to the GPU host; the check installs it offline"
}

if [ "${1:-}" = "--prepare-wheels" ]; then
    prepare_wheels
    exit $?
fi
REHEARSE=
if [ "${1:-}" = "--rehearse" ]; then
    REHEARSE=${2:?--rehearse needs a fixture name, e.g. h100x1}
fi

declare -a RESULTS=()
record() { # record NAME EXIT_CODE
    if [ "$2" -eq 0 ]; then RESULTS+=("PASS  $1"); else RESULTS+=("FAIL  $1 (exit $2)"); fi
}

section "host"
date -u
uname -srm
python3 --version
unset GPU_FAKE_NVML KEEL_ROOT APP_ENV  # the real NVML and configs/local of this checkout
if [ -n "$REHEARSE" ]; then
    export GPU_FAKE_NVML=$REHEARSE
    echo "REHEARSAL: fake NVML fixture $REHEARSE, not the real GPU"
fi

section "nvidia-smi"
if command -v nvidia-smi >/dev/null; then
    timeout 60 nvidia-smi
    timeout 60 nvidia-smi -L
    timeout 60 nvidia-smi --format=csv \
        --query-gpu=index,uuid,name,driver_version,temperature.gpu,fan.speed,power.draw,power.limit,utilization.gpu,memory.used,memory.total
else
    echo "nvidia-smi not on PATH"
fi

section "python environment"
if compgen -G "$WHEELS/*.whl" >/dev/null; then
    echo "mode: carried wheels ($WHEELS, $(ls "$WHEELS"/*.whl | wc -l) files) into /tmp/keel-site"
    sha256sum --quiet -c "$WHEELS/uv.lock.sha256" 2>/dev/null \
        || echo "WARNING: uv.lock changed since --prepare-wheels; rerun it if imports fail"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/keel-site "$WHEELS"/*.whl
    record "install wheels" $?
    export PYTHONPATH="/tmp/keel-site:$ROOT/src"
    PY=(python3)
    KEEL=(python3 -m keel.cli)
else
    echo "mode: uv sync --frozen"
    UV=(uv)
    if ! command -v uv >/dev/null; then
        python3 -m pip install -q --retries 1 --timeout 20 uv && UV=(python3 -m uv)
    fi
    timeout 180 "${UV[@]}" sync --frozen
    record "uv sync --frozen" $?
    PY=("${UV[@]}" run --frozen --no-sync python)
    KEEL=("${UV[@]}" run --frozen --no-sync keel)
fi
"${PY[@]}" -c 'import keel.cli; keel.cli.build_parser(); import gpustat, pynvml; print("keel imports; gpustat", gpustat.__version__, "pynvml from", pynvml.__file__)'
record "import keel" $?

section "keel gpu"
time timeout 60 "${KEEL[@]}" gpu
record "keel gpu" $?

section "keel gpu --json"
timeout 60 "${KEEL[@]}" gpu --json
record "keel gpu --json" $?

section "snapshot() from Python"
timeout 60 "${PY[@]}" - <<'EOF'
import time

import msgspec

from keel.config import load
from keel.gpu import GpuSnapshot, has_gpu, snapshot

settings = load()
started = time.perf_counter()
snap = snapshot(settings)
first = time.perf_counter() - started
started = time.perf_counter()
again = snapshot(settings)
second = time.perf_counter() - started
assert msgspec.json.decode(msgspec.json.encode(snap), type=GpuSnapshot) == snap
print(f"available={snap.available} reason={snap.reason!r} source={snap.source}")
print(f"driver={snap.driver_version} cuda={snap.cuda_version} gpus={len(snap.gpus)} "
      f"healthy={len(snap.healthy_gpus)} has_gpu={has_gpu(settings)}")
for gpu in snap.gpus:
    print(f"  [{gpu.index}] {gpu.name} {gpu.uuid} {gpu.temperature_c}C fan={gpu.fan_percent} "
          f"{gpu.power_draw_w}/{gpu.power_limit_w} W util={gpu.utilization_percent}% "
          f"mem={gpu.memory_used_mib}/{gpu.memory_total_mib} MiB processes={gpu.processes}")
print(f"snapshot() took {first * 1000:.0f} ms (first call), {second * 1000:.0f} ms (second)")
raise SystemExit(0 if snap.available and snap.healthy_gpus else 1)
EOF
record "snapshot() sees a healthy GPU" $?

section "a CUDA process shows up in keel gpu"
if env -u PYTHONPATH python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    # 1 GiB on the GPU, held by a process we own until killed; keel gpu should list its pid.
    rm -f /tmp/keel-holder-ready
    env -u PYTHONPATH python3 -c 'import pathlib, time, torch; x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda"); torch.cuda.synchronize(); pathlib.Path("/tmp/keel-holder-ready").touch(); time.sleep(120)' &
    HOLDER=$!
    for _ in $(seq 60); do [ -e /tmp/keel-holder-ready ] && break; sleep 0.5; done
    echo "holder pid: $HOLDER"
    timeout 60 "${KEEL[@]}" gpu | tee /tmp/keel-gpu-holder.txt
    grep -Eq "^[0-9]+ +$HOLDER " /tmp/keel-gpu-holder.txt
    record "CUDA process listed by keel gpu" $?
    kill "$HOLDER" 2>/dev/null
    wait "$HOLDER" 2>/dev/null
else
    echo "skipped: python3 has no CUDA-enabled torch to start a GPU process"
fi

section "gpu.probe job through the in-process broker (APP_ENV=local, SQLite in /tmp)"
rm -f /tmp/keel-gpu-check.db
timeout 120 "${PY[@]}" - <<'EOF' 2>&1 | grep -v ' | INFO '
import asyncio
import os
import time

from litestar.testing import TestClient

from keel.app import create_app
from keel.auth.runtime import build_runtime
from keel.config import load
from keel.db.migrate import migrate

environ = {"DB_DATABASE": "/tmp/keel-gpu-check.db", "LOG_LEVEL": "WARNING"}
if os.environ.get("GPU_FAKE_NVML"):  # --rehearse only
    environ["GPU_FAKE_NVML"] = os.environ["GPU_FAKE_NVML"]
settings = load("local", environ=environ)
assert settings.redis.backend == "memory", "APP_ENV=local runs jobs on the in-process broker"
asyncio.run(migrate(settings))
# The jobs API needs a caller: an access token signed with local's development key.
token = build_runtime(settings).jwt.issue("1", "access", name="gpu-check").token
with TestClient(create_app(settings)) as client:
    client.headers["Authorization"] = f"Bearer {token}"
    response = client.post("/api/jobs", json={"kind": "gpu.probe"})
    print("POST /api/jobs gpu.probe ->", response.status_code, response.text)
    if response.status_code != 202:
        raise SystemExit(1)
    job_id = response.json()["id"]
    started = time.monotonic()
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in {"succeeded", "failed", "cancelled"} or time.monotonic() - started > 60:
            break
        time.sleep(0.1)
    print(f"job {job_id}: status={job['status']} queue={job['queue']} worker={job['worker_id']} "
          f"after {time.monotonic() - started:.2f} s error={job['error']!r}")
    result = job.get("result") or {}
    for gpu in result.get("gpus", []):
        print(f"  [{gpu['index']}] {gpu['name']} {gpu['uuid']} mem {gpu['memory_total_mib']} MiB")
    fleet = client.get("/api/gpus")
    print("GET /api/gpus ->", fleet.status_code, fleet.text[:300])
    raise SystemExit(0 if job["status"] == "succeeded" and result.get("gpus") else 1)
EOF
record "gpu.probe job succeeds" "${PIPESTATUS[0]}"

section "keel gpu --watch 1 --count 2"
timeout 60 "${KEEL[@]}" gpu --watch 1 --count 2
record "keel gpu --watch" $?

section "pytest tests/unit/gpu (fake NVML cases + real-GPU test against nvidia-smi)"
if "${PY[@]}" -c 'import pytest' 2>/dev/null; then
    timeout 120 "${PY[@]}" -m pytest tests/unit/gpu -q -rs -p no:cacheprovider -p no:warnings -o addopts=""
    record "pytest tests/unit/gpu" $?
else
    echo "skipped: pytest not installed for this Python"
fi

section "summary"
printf '%s\n' "${RESULTS[@]}"
printf '%s\n' "${RESULTS[@]}" | grep -q '^FAIL' && exit 1
exit 0
