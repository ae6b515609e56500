"""HTTP endpoints for jobs (thin: parse, call the service). The service comes from Litestar's
dependency injection (``job_service``); its errors map to status codes in :data:`JOB_ERRORS`
(applied by :mod:`keel.http_errors`).

Guards: :data:`JOBS_GUARDS` (on the router of every route here) requires an authenticated
caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from litestar import Controller, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_202_ACCEPTED,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from keel.auth.guards import require_authenticated
from keel.components import provided
from keel.domain.jobs.kinds import InvalidPayloadError, UnknownKindError
from keel.domain.jobs.models import JobStatus
from keel.domain.jobs.schemas import CreateJob, JobAccepted, JobPage, JobView
from keel.domain.jobs.services import (
    EnqueueFailedError,
    JobConflictError,
    JobNotFoundError,
    JobService,
    parse_job_id,
)
from keel.http_errors import ErrorStatus
from keel.ids import IdError

# Route guards for every jobs endpoint: a caller with a valid JWT or a valid request signature.
JOBS_GUARDS: list[Callable[..., Any]] = [require_authenticated]

_RETRY_SOON = ErrorStatus(HTTP_503_SERVICE_UNAVAILABLE, {"Retry-After": "1"})
# What each error of the jobs service answers (detail: the error's message).
JOB_ERRORS: dict[type[Exception], ErrorStatus] = {
    JobNotFoundError: ErrorStatus(HTTP_404_NOT_FOUND),
    JobConflictError: ErrorStatus(HTTP_409_CONFLICT),
    UnknownKindError: ErrorStatus(HTTP_422_UNPROCESSABLE_ENTITY),
    InvalidPayloadError: ErrorStatus(HTTP_422_UNPROCESSABLE_ENTITY),
    EnqueueFailedError: _RETRY_SOON,
    IdError: _RETRY_SOON,
}


class JobsController(Controller):
    path = "/api/jobs"
    tags = ["jobs"]  # noqa: RUF012 - Litestar reads these class attributes

    @post("/", status_code=HTTP_202_ACCEPTED)
    async def create(
        self, job_service: NamedDependency[JobService], data: JSONBody[CreateJob]
    ) -> JobAccepted:
        """Accept a job; the same ``idempotency_key`` returns the existing job."""
        return await job_service.create(data.kind, data.payload, data.idempotency_key)

    @get("/{job_id:str}")
    async def read(
        self, job_service: NamedDependency[JobService], job_id: FromPath[str]
    ) -> JobView:
        return await job_service.get(parse_job_id(job_id))

    @get("/")
    async def page(
        self,
        job_service: NamedDependency[JobService],
        status: FromQuery[JobStatus | None] = None,
        kind: Annotated[str | None, Parameter(max_length=64)] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> JobPage:
        """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
        after = parse_job_id(cursor) if cursor else None
        return await job_service.page(
            status=status.value if status else None, kind=kind, limit=limit, cursor=after
        )

    @post("/{job_id:str}/cancel", status_code=HTTP_200_OK)
    async def cancel(
        self, job_service: NamedDependency[JobService], job_id: FromPath[str]
    ) -> JobView:
        return await job_service.cancel(parse_job_id(job_id))


def jobs_router(service: JobService) -> Router:
    """The jobs routes with the guards configured now (read at app build time)."""
    return Router(
        path="/",
        route_handlers=[JobsController],
        guards=list(JOBS_GUARDS),
        dependencies={"job_service": provided(service)},
    )
