"""SOPS secrets cost at startup.

1. Decrypt a 200-value secrets YAML (age unwrap once, 200 AES-GCM values, MAC check, YAML
   parse) with the same reader the config loader uses. Target: < 30 ms.
2. ``keel.config.load("test")`` end to end with a real encrypted ``secrets/test.yaml``
   (decrypt + merge into Settings + validation).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from keel.config import load
from keel.config.secrets_layer import read_env_secrets
from keel.secrets import KeyPlan, encrypt_bytes
from keel.secrets.age_keys import generate

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 30.0


def _median_ms(func: Callable[[], object], runs: int = 30) -> float:
    func()  # warm imports and caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    identity, recipient = generate()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        key = root / "key.txt"
        key.write_text(identity + "\n")
        environ = {"SOPS_AGE_KEY_FILE": str(key), "HOME": str(root)}
        plan = KeyPlan.single([recipient])

        values = "".join(f"VALUE_{i:03d}: secret-value-{i:03d}-{'x' * 24}\n" for i in range(200))
        big = root / "big.yaml"
        big.write_bytes(encrypt_bytes(values.encode(), "yaml", plan=plan))
        decrypt_ms = _median_ms(lambda: read_env_secrets(big, environ=environ, env="dev"))
        assert len(read_env_secrets(big, environ=environ, env="dev")) == 200

        shutil.copytree(REPO / "configs", root / "configs")
        settings_secrets = (
            "DB_PASSWORD: bench-db-password-0123456789abcdef\n"
            "REDIS_PASSWORD: bench-redis-password-0123456789abcd\n"
            "JWT_SECRET_KEY: bench-jwt-secret-key-0123456789abcdefghijklmnopqrstuvwxyz\n"
        )
        (root / "secrets").mkdir()
        (root / "secrets" / "test.yaml").write_bytes(
            encrypt_bytes(settings_secrets.encode(), "yaml", plan=plan)
        )
        load_ms = _median_ms(lambda: load("test", root=root, environ=environ))

    verdict = "OK" if decrypt_ms < TARGET_MS else "OVER TARGET"
    print(
        f"secrets: decrypt 200-value YAML     {decrypt_ms:7.2f} ms  "
        f"(target < {TARGET_MS:g} ms: {verdict})"
    )
    print(f"secrets: config load with secrets   {load_ms:7.2f} ms  (decrypt + merge + validate)")
    return 0 if decrypt_ms < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
