"""Jobs as a component: the service (API process) and the routes."""

from __future__ import annotations

from litestar.datastructures import State

from keel.components import Component
from keel.config import Settings
from keel.domain.jobs.controllers import jobs_controller
from keel.domain.jobs.gpus import gpus_controller
from keel.domain.jobs.limits import JobLimits
from keel.domain.jobs.services import JobService


class JobServiceResource:
    """Publishes ``state.job_service`` once the database, ids and broker are up."""

    name = "jobs"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def start(self, state: State) -> None:
        state.job_service = JobService(
            state.db_engine, state.ids, state.enqueue, self._settings.worker.max_attempts
        )
        state.job_limits = JobLimits.from_settings(self._settings.worker)

    async def stop(self) -> None:
        return None


def component(settings: Settings) -> Component:
    return Component(
        name="jobs",
        api_only_resources=[JobServiceResource(settings)],
        route_handlers=[jobs_controller(), gpus_controller()],
    )
