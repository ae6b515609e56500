"""Every domain's models, imported so one metadata (and one migration history) holds them all.

A domain with tables adds its ``models`` module here. It sits above the domains (it imports
each of them), so ``keel.db`` never imports a domain; the Alembic environment
(``keel.db.migrations.env``) imports this module.
"""

from __future__ import annotations

from keel.domain.jobs import models as jobs_models
from keel.domain.users import models as users_models

__all__ = ["jobs_models", "users_models"]
