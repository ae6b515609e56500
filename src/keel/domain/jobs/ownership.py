"""Who may see a job: its owner, or an admin. Everyone else gets 404, never 403 (a 403 would
tell a stranger that the id exists).

The owner is the caller that created the job: ``user:<id>`` for a person (JWT), ``key:<id>``
for a service (an API key signs as itself; keys have no human owner). Admins (role ``admin``)
may read and cancel any job, and list everyone's jobs only when they ask (``?all=true``).
"""

from __future__ import annotations

from dataclasses import dataclass

from keel.auth.principal import Principal

ADMIN_ROLE = "admin"


@dataclass(frozen=True, slots=True)
class Viewer:
    owner: str
    admin: bool

    def may_see(self, owner: str | None) -> bool:
        return self.admin or owner == self.owner


def owner_of(principal: Principal) -> str:
    return f"{'user' if principal.kind == 'user' else 'key'}:{principal.id}"


def viewer_of(principal: Principal) -> Viewer:
    return Viewer(owner=owner_of(principal), admin=principal.has_role(ADMIN_ROLE))
