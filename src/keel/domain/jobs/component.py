"""Jobs as a component: the jobs service over the runtime's database, ids and job queue, its
routes (the service reaches them through ``Provide``) and its errors' HTTP statuses."""

from __future__ import annotations

from keel.components import Component
from keel.domain.jobs.controllers import JOB_ERRORS, jobs_router
from keel.domain.jobs.limits import JobLimits
from keel.domain.jobs.services import JobService
from keel.runtime import Runtime


def component(runtime: Runtime) -> Component:
    service = JobService(
        runtime.database.engine,
        runtime.ids.ids,
        runtime.jobs_queue.enqueue,
        runtime.settings.worker.max_attempts,
        direct=runtime.database.direct,
    )
    limits = JobLimits.from_settings(runtime.settings.worker, runtime.database.direct)
    return Component(name="jobs", route_handlers=[jobs_router(service, limits)], errors=JOB_ERRORS)
