"""HTTP endpoints for jobs (thin: parse, call the service, map errors to status codes).

Guards: :data:`JOBS_GUARDS` (applied to every route here) requires an authenticated caller.
Every route sees only the caller's own jobs (keel.domain.jobs.ownership); others' are 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import (
    HTTPException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, QueryParameter
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_202_ACCEPTED,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from keel.auth.guards import current_principal, require_authenticated
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
from keel.ids import IdError

# Route guards for every jobs endpoint: a caller with a valid JWT or a valid request signature.
JOBS_GUARDS: list[Callable[..., Any]] = [require_authenticated]


def _service(state: State) -> JobService:
    service: JobService | None = state.get("job_service")
    if service is None:
        raise HTTPException(status_code=HTTP_503_SERVICE_UNAVAILABLE, detail="jobs not ready")
    return service


def _job_id(text: str) -> int:
    try:
        return parse_job_id(text)
    except JobNotFoundError as exc:
        raise NotFoundException(detail=str(exc)) from None


def _viewer(request: Request[Any, Any, Any]) -> Viewer:
    principal = current_principal(request)
    assert principal is not None  # JOBS_GUARDS ran
    return viewer_of(principal)


class JobsController(Controller):
    path = "/api/jobs"
    tags = ["jobs"]  # noqa: RUF012 - Litestar reads these class attributes

    @post("/", status_code=HTTP_202_ACCEPTED)
    async def create(
        self, request: Request[Any, Any, Any], state: State, data: JSONBody[CreateJob]
    ) -> JobAccepted:
        """Accept a job owned by the caller. The caller's own ``idempotency_key`` returns the
        existing job for the same request, and 422 for a different one."""
        limits: JobLimits | None = state.get("job_limits")
        try:
            return await _service(state).create(
                data.kind,
                data.payload,
                data.idempotency_key,
                owner=_viewer(request).owner,
                admission=limits,
            )
        except (UnknownKindError, InvalidPayloadError, IdempotencyConflictError) as exc:
            raise HTTPException(
                status_code=HTTP_422_UNPROCESSABLE_ENTITY, detail=str(exc)
            ) from None
        except TooManyActiveJobsError as exc:
            raise HTTPException(
                status_code=HTTP_429_TOO_MANY_REQUESTS,
                detail=str(exc),
                headers={"Retry-After": str(exc.retry_after)},
            ) from None
        except (EnqueueFailedError, IdError) as exc:
            raise HTTPException(
                status_code=HTTP_503_SERVICE_UNAVAILABLE,
                detail=str(exc),
                headers={"Retry-After": "1"},
            ) from None

    @get("/{job_id:str}")
    async def read(
        self, request: Request[Any, Any, Any], state: State, job_id: FromPath[str]
    ) -> JobView:
        """The caller's job (any job for an admin); 404 for a job of someone else."""
        try:
            return await _service(state).get(_job_id(job_id), _viewer(request))
        except JobNotFoundError as exc:
            raise NotFoundException(detail=str(exc)) from None

    @get("/")
    async def page(
        self,
        request: Request[Any, Any, Any],
        state: State,
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
        try:
            after = parse_job_id(cursor) if cursor else None
        except JobNotFoundError as exc:  # a cursor is ours to hand out: a bad one is malformed
            raise ValidationException(detail=f"cursor: {exc}") from None
        return await _service(state).page(
            status=status.value if status else None,
            kind=kind,
            limit=limit,
            cursor=after,
            owner=None if all_owners else viewer.owner,
        )

    @post("/{job_id:str}/cancel", status_code=HTTP_200_OK)
    async def cancel(
        self, request: Request[Any, Any, Any], state: State, job_id: FromPath[str]
    ) -> Response[JobView]:
        try:
            return Response(await _service(state).cancel(_job_id(job_id), _viewer(request)))
        except JobNotFoundError as exc:
            raise NotFoundException(detail=str(exc)) from None
        except JobConflictError as exc:
            raise HTTPException(status_code=HTTP_409_CONFLICT, detail=str(exc)) from None


def jobs_controller() -> type[Controller]:
    """The controller with the guards configured now (read at app build time)."""
    return type("JobsController", (JobsController,), {"guards": list(JOBS_GUARDS)})
