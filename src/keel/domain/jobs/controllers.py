"""HTTP endpoints for jobs (thin: parse, call the service). The service comes from Litestar's
dependency injection (``job_service``); its errors map to status codes in :data:`JOB_ERRORS`
(applied by :mod:`keel.http_errors`).

Every route here requires an authenticated caller: :data:`JOBS_OPT` on the router (the
``CALLER_REQUIRED`` rule of keel.auth.guards, enforced by the authentication middleware).
Every route sees only the caller's own jobs (keel.domain.jobs.ownership); others' are 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, QueryParameter
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_202_ACCEPTED,
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from keel.auth.errors import unauthorized
from keel.auth.guards import CALLER_REQUIRED, current_principal
from keel.components import provided
from keel.domain.jobs.kinds import InvalidPayloadError, UnknownKindError
from keel.domain.jobs.limits import JobLimits, TooManyActiveJobsError
from keel.domain.jobs.models import JobStatus
from keel.domain.jobs.ownership import Viewer, viewer_of
from keel.domain.jobs.schemas import CreateJob, JobAccepted, JobPage, JobView
from keel.domain.jobs.services import (
    EnqueueFailedError,
    IdempotencyConflictError,
    JobConflictError,
    JobNotFoundError,
    JobService,
    parse_job_id,
)
from keel.http_errors import ErrorStatus
from keel.ids import IdError

# Every jobs endpoint: a caller with a valid JWT or a valid request signature.
JOBS_OPT: dict[str, Any] = {CALLER_REQUIRED: True}

_RETRY_SOON = ErrorStatus(HTTP_503_SERVICE_UNAVAILABLE, {"Retry-After": "1"})
# What each error of the jobs service answers (detail: the error's message).
JOB_ERRORS: dict[type[Exception], ErrorStatus] = {
    JobNotFoundError: ErrorStatus(HTTP_404_NOT_FOUND),
    JobConflictError: ErrorStatus(HTTP_409_CONFLICT),
    UnknownKindError: ErrorStatus(HTTP_422_UNPROCESSABLE_ENTITY),
    InvalidPayloadError: ErrorStatus(HTTP_422_UNPROCESSABLE_ENTITY),
    IdempotencyConflictError: ErrorStatus(HTTP_422_UNPROCESSABLE_ENTITY),
    # Retry-After comes from the error itself (its ``headers``).
    TooManyActiveJobsError: ErrorStatus(HTTP_429_TOO_MANY_REQUESTS),
    EnqueueFailedError: _RETRY_SOON,
    IdError: _RETRY_SOON,
}


def _viewer(request: Request[Any, Any, Any]) -> Viewer:
    principal = current_principal(request)
    if principal is None:  # JOBS_OPT makes the middleware refuse these before they get here
        raise unauthorized()
    return viewer_of(principal)


def _cursor(text: str) -> int:
    try:
        return parse_job_id(text)
    except JobNotFoundError:
        raise HTTPException(
            status_code=HTTP_400_BAD_REQUEST,
            detail=f"cursor {text!r} is not a page cursor: pass back the next_cursor of the "
            "previous page unchanged (omit cursor for the first page)",
        ) from None


class JobsController(Controller):
    path = "/api/jobs"
    tags = ["jobs"]  # noqa: RUF012 - Litestar reads these class attributes

    @post("/", status_code=HTTP_202_ACCEPTED)
    async def create(
        self,
        request: Request[Any, Any, Any],
        job_service: NamedDependency[JobService],
        job_limits: NamedDependency[JobLimits],
        data: JSONBody[CreateJob],
    ) -> JobAccepted:
        """Accept a job owned by the caller. The caller's own ``idempotency_key`` returns the
        existing job for the same request, and 422 for a different one."""
        return await job_service.create(
            data.kind,
            data.payload,
            data.idempotency_key,
            owner=_viewer(request).owner,
            admission=job_limits,
        )

    @get("/{job_id:str}")
    async def read(
        self,
        request: Request[Any, Any, Any],
        job_service: NamedDependency[JobService],
        job_id: FromPath[str],
    ) -> JobView:
        """The caller's job (any job for an admin); 404 for a job of someone else."""
        return await job_service.get(parse_job_id(job_id), _viewer(request))

    @get("/")
    async def page(
        self,
        request: Request[Any, Any, Any],
        job_service: NamedDependency[JobService],
        *,
        status: FromQuery[JobStatus | None] = None,
        kind: Annotated[str | None, Parameter(max_length=64)] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
        all_owners: Annotated[bool, QueryParameter(name="all")] = False,
    ) -> JobPage:
        """The caller's jobs, newest first; pass ``next_cursor`` back as ``cursor`` for the
        next page. Admins see everyone's with ``all=true`` (403 for anyone else)."""
        viewer = _viewer(request)
        if all_owners and not viewer.admin:
            raise PermissionDeniedException(detail="all=true needs the admin role")
        after = _cursor(cursor) if cursor else None
        return await job_service.page(
            status=status.value if status else None,
            kind=kind,
            limit=limit,
            cursor=after,
            owner=None if all_owners else viewer.owner,
        )

    @post("/{job_id:str}/cancel", status_code=HTTP_200_OK)
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        job_service: NamedDependency[JobService],
        job_id: FromPath[str],
    ) -> JobView:
        return await job_service.cancel(parse_job_id(job_id), _viewer(request))


def jobs_router(service: JobService, limits: JobLimits) -> Router:
    """The jobs routes, every one requiring a caller (:data:`JOBS_OPT`)."""
    return Router(
        path="/",
        route_handlers=[JobsController],
        opt=dict(JOBS_OPT),
        dependencies={"job_service": provided(service), "job_limits": provided(limits)},
    )
