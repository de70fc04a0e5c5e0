"""The declarative base: naming conventions and the integer-seconds time type."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, MetaData
from sqlalchemy.orm import DeclarativeBase

Json = dict[str, Any]


class Base(DeclarativeBase):
    # Named constraints, so later migrations can alter them on PostgreSQL and SQLite alike.
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })
    type_annotation_map = {int: BigInteger}
