"""The declarative base every domain's models derive from: one metadata, one migration history.

Plain SQLAlchemy with advanced-alchemy's constraint naming convention (stable constraint names in
migrations on every dialect; the names already in the migrations come from it). Not
advanced-alchemy's ``DefaultBase`` itself: importing it costs seconds (it pulls in Litestar and
every optional integration), which every operator command (``keel users …``) would pay.
Models import :class:`Base` from here; ``keel.models`` imports every domain's models so
Alembic sees all tables.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(AsyncAttrs, DeclarativeBase):
    __abstract__ = True
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


metadata: MetaData = Base.metadata
