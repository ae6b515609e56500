"""Every metric Keel exports, defined once. Labels are bounded sets, never user input.

Counters and histograms are summed over a container's processes; gauges say how
(``livesum``: summed over live processes only).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# HTTP: route is the route template (``/api/jobs/{job_id:str}``), never the raw path.
HTTP_REQUESTS = Counter(
    "keel_http_requests",
    "HTTP requests answered, by method, route template and status class",
    ["method", "route", "status_class"],
)
HTTP_DURATION = Histogram(
    "keel_http_request_duration_seconds",
    "Time from request to the last response byte",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_IN_FLIGHT = Gauge(
    "keel_http_requests_in_flight",
    "Requests being handled (sampled once a second per process)",
    multiprocess_mode="livesum",
)

# Jobs, from Keel's own runner (every job is the one Taskiq task keel.run_job).
JOBS_ACCEPTED = Counter("keel_jobs_accepted", "Jobs accepted by the API", ["queue", "kind"])
JOBS_STARTED = Counter("keel_jobs_started", "Job attempts started", ["queue", "kind"])
JOBS_FINISHED = Counter(
    "keel_jobs_finished",
    "Job attempts finished, by outcome: succeeded, failed, retried, superseded",
    ["queue", "kind", "outcome"],
)
JOBS_RECLAIMED = Counter(
    "keel_jobs_reclaimed",
    "Jobs taken over from a worker whose heartbeat is gone",
    ["queue", "kind"],
)
_JOB_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
JOB_RUN_SECONDS = Histogram(
    "keel_job_run_seconds", "Run time of one attempt", ["queue", "kind"], buckets=_JOB_BUCKETS
)
JOB_WAIT_SECONDS = Histogram(
    "keel_job_wait_seconds",
    "From enqueue (or the retry's due time) to the attempt's start",
    ["queue", "kind"],
    buckets=_JOB_BUCKETS,
)
JOBS_IN_FLIGHT = Gauge(
    "keel_jobs_in_flight", "Job attempts running now", multiprocess_mode="livesum"
)

# Dependencies.
DB_POOL_CHECKED_OUT = Gauge(
    "keel_db_pool_checked_out", "Database connections in use", multiprocess_mode="livesum"
)
DB_POOL_CAPACITY = Gauge(
    "keel_db_pool_capacity",
    "Connections the pools may open (size + max overflow)",
    multiprocess_mode="livesum",
)
DB_POOL_OVERFLOW = Gauge(
    "keel_db_pool_overflow", "Connections open beyond the pool size", multiprocess_mode="livesum"
)
REDIS_RECONNECTS = Counter(
    "keel_redis_reconnects", "Reconnects after a lost Redis connection", ["client"]
)
AUTH_REFUSALS = Counter(
    "keel_auth_refusals", "Requests refused by authentication, by reason class", ["reason"]
)
