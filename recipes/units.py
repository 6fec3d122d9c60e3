"""Units through pint, with Decimal magnitudes (no binary floats anywhere in a conversion).

One registry per process, created on first use (about 0.3 s). pint already knows `percent`
(alias `%`), `rpm`, `min`, `g`, `kg` and friends; units are case-sensitive (`G` is gauss).
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache

import pint

MASS = "[mass]"
TIME = "[time]"

# Metric prefixes are accepted only on these units: pint would otherwise read 'pct' as
# picocarat or 'mmin' as milliminute without a word.
PREFIXABLE = frozenset(
    {
        "gram", "liter", "meter", "second", "mole", "kelvin", "pascal", "bar", "newton",
        "joule", "calorie", "watt", "hertz", "volt", "ampere", "ohm", "siemens", "radian",
    }
)  # fmt: skip


@cache
def registry() -> pint.UnitRegistry:
    return pint.UnitRegistry(non_int_type=Decimal)


def unit_problem(unit: str) -> str | None:
    """None when pint knows `unit`, else a message saying what is wrong and what to write."""
    ureg = registry()
    try:
        names = [name for name, _ in ureg.Quantity(Decimal(1), unit).unit_items()]
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError):
        return (
            f"unknown unit '{unit}'; write a unit pint knows, e.g. g, kg, mg, min, s, rpm, "
            "percent (units are case-sensitive)"
        )
    except Exception as exc:  # pint raises ValueError/AttributeError/... on odd expressions
        detail = f" ({exc})" if str(exc) else ""
        return f"'{unit}' is not a unit{detail}; write a plain unit such as kg, min or rpm"
    for name in names:
        prefix, base, _ = ureg.parse_unit_name(name)[0]
        if prefix and base not in PREFIXABLE:
            return (
                f"'{unit}' would be read as {name} ({prefix} + {base}); write the unit you "
                "mean in full, e.g. percent, min or rpm"
            )
    return None


def is_known(unit: str) -> bool:
    return unit_problem(unit) is None


def has_dimension(unit: str, dimension: str) -> bool:
    """True when `unit` is known and measures `dimension` (e.g. `[mass]`, `[time]`)."""
    return is_known(unit) and registry().parse_units(unit).dimensionality == dimension


def is_rotational_speed(unit: str) -> bool:
    """True for rpm, rps, revolution/minute, deg/s, ...: an angle per time.

    `Hz` and `1/min` are refused on purpose: pint treats a revolution as 2 pi radians, so
    they would convert to rpm 2 pi times too small.
    """
    if not is_known(unit):
        return False
    ureg = registry()
    _, root = ureg.get_root_units(unit)
    return bool(root == ureg.parse_units("radian / second"))


def compatible(unit_a: str, unit_b: str) -> bool:
    """Both known and convertible into each other (e.g. g and kg)."""
    if not (is_known(unit_a) and is_known(unit_b)):
        return False
    ureg = registry()
    return ureg.parse_units(unit_a).dimensionality == ureg.parse_units(unit_b).dimensionality


def convert(value: Decimal, unit: str, to_unit: str) -> Decimal:
    """Convert exactly (Decimal arithmetic, 28 significant digits) from `unit` to `to_unit`."""
    if unit == to_unit:
        return value
    quantity = registry().Quantity(value, unit).to(to_unit)
    return Decimal(quantity.magnitude)
