"""The declarative base and the column types every model shares.

Times are stored as UTC and always come back timezone-aware, on SQLite too. Primary keys
are integers for joins; anything that appears in a URL or an address uses `new_public_id`,
a random lower-case base32 string, so ids cannot be guessed or enumerated.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, String, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, make_transient_to_detached, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")

ModelT = TypeVar("ModelT", bound="Base")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_public_id() -> str:
    """80 random bits as 16 lower-case base32 characters (safe in URLs and local parts)."""
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and returned timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def loaded(model: type[ModelT], values: Mapping[str, Any]) -> ModelT:
    """A detached `model` holding `values`, as if loaded from its row.

    For rows read or inserted with Core on a hot path: built as the ORM's loader builds
    one (no constructor, no attribute events), so `Session.add` makes it persistent
    without a flush. Attributes not in `values` load on first access, like expired ones.
    """
    instance = inspect(model).class_manager.new_instance()
    instance.__dict__.update(values)
    make_transient_to_detached(instance)
    return instance


def public_id_column() -> Mapped[str]:
    return mapped_column(String(32), unique=True, default=new_public_id)


def created_column() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow)
