"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

#: Primary and foreign keys: 64-bit on PostgreSQL, SQLite's rowid alias on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

#: JSON documents: JSONB on PostgreSQL (indexable), JSON text on SQLite.
JSONDocument = JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in Python; ``timestamptz`` on PostgreSQL, naive UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], datetime | None] | None:
        if dialect.name != "sqlite":
            if self.impl_instance.dialect_impl(dialect).result_processor(dialect, coltype) is not None:
                return super().result_processor(dialect, coltype)
            # the driver hands back aware datetimes, already in UTC when the session's zone is UTC:
            # those are the answer as they are (a list converts hundreds of values per page)
            convert = self.process_result_value

            def process_aware(value: Any) -> datetime | None:
                if value is None or (type(value) is datetime and value.tzinfo is UTC):
                    return value
                return convert(value, dialect)

            return process_aware
        # SQLite hands back the stored text ("2026-11-01 10:00:00.123456", UTC): parse it with the
        # zone in one C call — ``parse(text).replace(tzinfo=UTC)`` costs several times as much.
        # Text that does not take the suffix (it names a zone already) is parsed as before.
        parse = datetime.fromisoformat

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, str):
                try:
                    return parse(value + "+00:00")
                except ValueError:
                    return parse(value).replace(tzinfo=UTC)
            return self.process_result_value(value, dialect)

        return process


class ScaledDecimal(TypeDecorator[Decimal]):
    """An exact decimal stored as a scaled integer (money in cents, percentages in hundredths).

    Integers sum, sort and compare exactly on both databases, which SQLite's REAL would not.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int = 2, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scale = scale
        self._factor = Decimal(10) ** scale

    def normalize(self, value: Decimal | int) -> Decimal:
        """``value`` as the database gives it back: exactly ``scale`` decimal places. A value with
        more places comes back unchanged (never rounded): storing it fails, as it should."""
        exact = Decimal(value)
        try:
            padded = exact.quantize(Decimal(1).scaleb(-self.scale))
        except InvalidOperation:
            return exact
        return padded if padded == exact else exact

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        scaled = Decimal(value) * self._factor
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return int(scaled)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value).scaleb(-self.scale)  # exact: 12345 → 123.45, 100 → 1.00


Money = ScaledDecimal(2)
