"""The declarative base every domain's models derive from: one metadata, one migration history.

advanced-alchemy's ``DefaultBase`` brings the naming convention (stable constraint names in
migrations on every dialect) and the type map (``datetime`` -> ``DateTimeUTC``, ``dict`` ->
``JsonB``). Models import :class:`Base` from here; ``keel.models`` imports every domain's
models so Alembic sees all tables.
"""

from __future__ import annotations

from advanced_alchemy.base import DefaultBase
from sqlalchemy import MetaData

Base = DefaultBase
metadata: MetaData = DefaultBase.metadata
