"""keel.config.load() time (target < 50 ms). The HTTP figures (/health/live and the jobs
routes against a bare Litestar app) are bench_jobs' headline table."""

from __future__ import annotations

import statistics
import time


def main() -> None:
    from keel.config import load

    samples = []
    for _ in range(50):
        began = time.perf_counter()
        load("local")
        samples.append((time.perf_counter() - began) * 1000)
    print(
        f"keel.config.load('local'): median {statistics.median(samples):.2f} ms, "
        f"max {max(samples):.2f} ms (target < 50 ms)"
    )


if __name__ == "__main__":
    main()
