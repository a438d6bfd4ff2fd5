"""What a metered execution costs: :class:`Prices` the user supplies (in code, a JSON or
TOML file, or command-line flags) and :func:`estimate`, per execution and per month.

durable_gen has no built-in prices; the units are Lambda's (see ``meter``).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._core.errors import ValidationError
from .meter import Meter

__all__ = ["CostBreakdown", "Estimate", "Prices", "estimate", "load_prices", "prices_from_flags"]


def _price(name: str, value: object) -> float:
    if isinstance(value, bool):
        raise ValidationError(f"price {name} must be a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValidationError(f"price {name} must be a number, got {value!r:.40}") from None
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValidationError(f"price {name} must be a finite number >= 0, got {value!r:.40}")
    return float(value)


def _positive(name: str, value: object) -> float:
    v = _price(name, value)
    if v <= 0:
        raise ValidationError(f"{name} must be > 0, got {value!r:.40}")
    return v


def _ops_price(value: object) -> float:
    return _price("per_million_operations", value)


def _persisted_price(value: object) -> float:
    return _price("per_gb_persisted", value)


def _retained_price(value: object) -> float:
    return _price("per_gb_month_retained", value)


def _gb_size(value: object) -> float:
    return _positive("bytes_per_gb", value)


def _month_days(value: object) -> float:
    return _positive("days_per_month", value)


@attrs.frozen(kw_only=True)
class Prices:
    """Unit prices the user supplies (durable_gen knows none as facts).

    ``per_million_operations`` per million durable operations,
    ``per_gb_persisted`` per GB of data persisted, ``per_gb_month_retained`` per
    GB-month of data retained. ``currency`` is only a label. A GB is
    ``bytes_per_gb`` bytes (2**30 unless set), a month ``days_per_month`` days
    (30 unless set).
    """

    per_million_operations: float = attrs.field(converter=_ops_price)
    per_gb_persisted: float = attrs.field(converter=_persisted_price)
    per_gb_month_retained: float = attrs.field(converter=_retained_price)
    currency: str = ""
    bytes_per_gb: float = attrs.field(default=2**30, converter=_gb_size)
    days_per_month: float = attrs.field(default=30, converter=_month_days)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "prices") -> Prices:
        """From a mapping with the field names (CLI spellings and a ``price`` prefix too)."""
        known = {f.name for f in attrs.fields(cls)}
        kwargs: dict[str, Any] = {}
        unknown = []
        for key, value in values.items():
            k = _norm_key(str(key))
            if k in known:
                kwargs[k] = value
            else:
                unknown.append(str(key))
        if unknown:
            raise ValidationError(
                f"{source}: unknown setting(s) {', '.join(sorted(unknown))}; known: "
                f"{', '.join(sorted(known))}"
            )
        missing = [n for n in _REQUIRED if n not in kwargs]
        if missing:
            raise ValidationError(
                f"{source}: missing price(s) {', '.join(missing)}; durable_gen has no "
                "built-in prices -- supply every one (0 for a unit you do not want priced), "
                "e.g. --price-per-million-operations 8.00"
            )
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


_REQUIRED = ("per_million_operations", "per_gb_persisted", "per_gb_month_retained")


def _norm_key(key: str) -> str:
    k = key.strip().lstrip("-").replace("-", "_").lower()
    return k.removeprefix("price_")


def load_prices(path: str | Path) -> Prices:
    """Prices from a JSON or TOML file (``.toml``), top level or under ``[prices]``."""
    return Prices.from_mapping(_read_prices_file(path), source=str(path))


def _read_prices_file(path: str | Path) -> Mapping[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ValidationError(f"cannot read the prices file {str(p)!r}: {e.strerror}") from None
    try:
        data: Any = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as e:
        raise ValidationError(f"the prices file {str(p)!r} cannot be parsed: {e}") from None
    if isinstance(data, Mapping) and isinstance(data.get("prices"), Mapping):
        data = data["prices"]
    if not isinstance(data, Mapping):
        raise ValidationError(f"the prices file {str(p)!r} must hold an object of prices")
    return data


_FILE_KEYS = ("prices_file", "prices", "price_file", "prices_config")


def prices_from_flags(flags: Mapping[str, Any]) -> Prices:
    """Prices from CLI-style flags, e.g. ``vars(argparse_namespace)``.

    Keys may be spelled ``--price-per-million-operations``,
    ``price_per_million_operations`` or ``per_million_operations``; ``None``
    values (flags not given) are ignored; ``prices_file`` (or ``--prices``) names a
    config file read first, which the other flags override.
    """
    base: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    source = "price flags"
    for key, value in flags.items():
        if value is None:
            continue
        k = key.strip().lstrip("-").replace("-", "_").lower()
        if k in _FILE_KEYS:
            # the file may leave out prices the flags give
            base = {_norm_key(str(fk)): fv for fk, fv in _read_prices_file(str(value)).items()}
            source = f"{value} and price flags"
        else:
            rest[_norm_key(key)] = value
    return Prices.from_mapping({**base, **rest}, source=source)


@attrs.frozen(kw_only=True)
class CostBreakdown:
    """Cost of durable operations, data persisted and data retained."""

    operations: float
    persisted: float
    retained: float

    @property
    def total(self) -> float:
        return self.operations + self.persisted + self.retained

    def to_dict(self) -> dict[str, float]:
        return {
            "operations": self.operations,
            "persisted": self.persisted,
            "retained": self.retained,
            "total": self.total,
        }


@attrs.frozen(kw_only=True)
class Estimate:
    """What an execution like the metered one costs, alone and ``executions_per_month`` times."""

    prices: Prices
    executions_per_month: int
    operations: int
    bytes_persisted: int
    retention_days: float | None
    per_execution: CostBreakdown
    per_month: CostBreakdown

    def to_dict(self) -> dict[str, Any]:
        return {
            "prices": self.prices.to_dict(),
            "executions_per_month": self.executions_per_month,
            "operations": self.operations,
            "bytes_persisted": self.bytes_persisted,
            "retention_days": self.retention_days,
            "per_execution": self.per_execution.to_dict(),
            "per_month": self.per_month.to_dict(),
        }

    def to_table(self) -> str:
        cur = f" {self.prices.currency}" if self.prices.currency else ""
        rows = [
            ("durable operations", self.per_execution.operations, self.per_month.operations),
            ("data persisted", self.per_execution.persisted, self.per_month.persisted),
            ("data retained", self.per_execution.retained, self.per_month.retained),
            ("total", self.per_execution.total, self.per_month.total),
        ]
        head = ("cost" + cur, "per execution", f"per month ({self.executions_per_month:,})")
        cells = [(a, f"{b:.6f}", f"{c:.2f}") for a, b, c in rows]
        w = [max(len(r[i]) for r in [head, *cells]) for i in range(3)]
        out = [f"  {head[0]:<{w[0]}}  {head[1]:>{w[1]}}  {head[2]:>{w[2]}}"]
        out += [f"  {a:<{w[0]}}  {b:>{w[1]}}  {c:>{w[2]}}" for a, b, c in cells]
        if self.retention_days is None:
            out.append("note: no retention period given; data retained is not priced")
        return "\n".join(["estimate", *out])


def estimate(meter: Meter, prices: Prices, executions_per_month: int) -> Estimate:
    """The cost of one execution like ``meter``'s, and of ``executions_per_month`` of them.

    Retained data is priced as GB-months: bytes persisted / ``bytes_per_gb`` x
    retention days / ``days_per_month`` (zero when the meter has no retention
    period). The monthly figure is the steady state of that many executions a month.
    """
    if type(executions_per_month) is not int or executions_per_month < 0:
        raise ValidationError(
            f"executions_per_month must be an int >= 0, got {executions_per_month!r:.40}"
        )
    gb = meter.bytes_persisted / prices.bytes_per_gb
    retained_gb_months = gb * (meter.retention_days or 0) / prices.days_per_month
    one = CostBreakdown(
        operations=meter.operations / 1_000_000 * prices.per_million_operations,
        persisted=gb * prices.per_gb_persisted,
        retained=retained_gb_months * prices.per_gb_month_retained,
    )
    n = executions_per_month
    month = CostBreakdown(
        operations=one.operations * n, persisted=one.persisted * n, retained=one.retained * n
    )
    return Estimate(
        prices=prices,
        executions_per_month=n,
        operations=meter.operations,
        bytes_persisted=meter.bytes_persisted,
        retention_days=meter.retention_days,
        per_execution=one,
        per_month=month,
    )
