"""HTTP endpoints for jobs (thin: parse, call the service, map errors to status codes).

Guards: :data:`JOBS_GUARDS` (applied to every route here) requires an authenticated caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_202_ACCEPTED,
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from keel.auth.guards import require_authenticated
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
    async def create(self, state: State, data: JSONBody[CreateJob]) -> JobAccepted:
        """Accept a job; the same ``idempotency_key`` returns the existing job."""
        try:
            return await _service(state).create(data.kind, data.payload, data.idempotency_key)
        except (UnknownKindError, InvalidPayloadError) as exc:
            raise HTTPException(
                status_code=HTTP_422_UNPROCESSABLE_ENTITY, detail=str(exc)
            ) from None
        except (EnqueueFailedError, IdError) as exc:
            raise HTTPException(
                status_code=HTTP_503_SERVICE_UNAVAILABLE,
                detail=str(exc),
                headers={"Retry-After": "1"},
            ) from None

    @get("/{job_id:str}")
    async def read(self, state: State, job_id: FromPath[str]) -> JobView:
        try:
            return await _service(state).get(_job_id(job_id))
        except JobNotFoundError as exc:
            raise NotFoundException(detail=str(exc)) from None

    @get("/")
    async def page(
        self,
        state: State,
        status: FromQuery[JobStatus | None] = None,
        kind: Annotated[str | None, Parameter(max_length=64)] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> JobPage:
        """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
        after = _cursor(cursor) if cursor else None
        return await _service(state).page(
            status=status.value if status else None, kind=kind, limit=limit, cursor=after
        )

    @post("/{job_id:str}/cancel", status_code=HTTP_200_OK)
    async def cancel(self, state: State, job_id: FromPath[str]) -> Response[JobView]:
        try:
            return Response(await _service(state).cancel(_job_id(job_id)))
        except JobNotFoundError as exc:
            raise NotFoundException(detail=str(exc)) from None
        except JobConflictError as exc:
            raise HTTPException(status_code=HTTP_409_CONFLICT, detail=str(exc)) from None


def jobs_controller() -> type[Controller]:
    """The controller with the guards configured now (read at app build time)."""
    return type("JobsController", (JobsController,), {"guards": list(JOBS_GUARDS)})
