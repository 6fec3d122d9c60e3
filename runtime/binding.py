"""Does a registered piece of equipment meet a recipe role's requirement?

The recipe carries, per role (`recipes.plan.EquipmentRequirement`): the range the
equipment must cover and the readability it must reach, in one unit, and its
preconditions (calibration current, clean, cleaned within so many hours). The register
says what each piece of equipment offers: its `range` (min, max, unit) or else
`capacity` in `unit` (a range from 0), its `resolution` in `unit`, its calibration due
date and its cleaning. Units are converted with pint (`recipes.units`), so a role in kg
binds a scale registered in g.

`refusals(entry, requirement, now)` lists every reason the entry does not fit, each a
sentence for the supervisor starting the batch; empty means it fits.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pint

from devices.register import Equipment
from recipes import units
from recipes.plan import EquipmentRequirement


def refusals(entry: Equipment, req: EquipmentRequirement, now: datetime) -> list[str]:
    reasons = [
        reason
        for reason in entry.unfit_reasons(now.date())
        if (req.require_calibrated or "calibration" not in reason)
        and (req.require_clean or "dirty" not in reason)
    ]
    reasons += _cleaning_hold(entry, req, now)
    reasons += _coverage(entry, req)
    return reasons


def _cleaning_hold(entry: Equipment, req: EquipmentRequirement, now: datetime) -> list[str]:
    hours = req.max_hours_since_cleaning
    if hours is None or entry.cleaning.status != "clean":
        return []  # dirty equipment is refused above (or allowed by the recipe)
    cleaned_at = entry.cleaning.cleaned_at
    if cleaned_at is None:
        return [f"the recipe allows {hours} h since cleaning and the register has no cleaning time"]
    age_h = (now - cleaned_at).total_seconds() / 3600
    if age_h > hours:
        return [
            f"it was cleaned at {cleaned_at.isoformat()}, {age_h:.0f} h ago, and the recipe "
            f"allows {hours} h: clean it and record the cleaning in the register"
        ]
    return []


def _coverage(entry: Equipment, req: EquipmentRequirement) -> list[str]:
    wanted_min = _decimal(req.min_capacity)
    wanted_max = _decimal(req.max_capacity)
    wanted_resolution = _decimal(req.max_resolution)
    if req.unit is None or (wanted_min, wanted_max, wanted_resolution) == (None, None, None):
        return []
    reasons: list[str] = []
    if wanted_min is not None or wanted_max is not None:
        span = _span_in(entry, req.unit)
        if span is None:
            reasons.append(
                f"the register gives it no range or capacity in a unit comparable with "
                f"{req.unit}: add `range: {{min, max, unit}}` or capacity and unit"
            )
        else:
            low, high = span
            if wanted_min is not None and not low <= wanted_min:
                reasons.append(
                    f"its range starts at {_show(low)} {req.unit}, above the {wanted_min} "
                    f"{req.unit} the recipe needs"
                )
            if wanted_max is not None and not wanted_max <= high:
                reasons.append(
                    f"its range ends at {_show(high)} {req.unit}, below the {wanted_max} "
                    f"{req.unit} the recipe needs"
                )
    if wanted_resolution is not None:
        resolution = _converted(entry.resolution, entry.unit, req.unit)
        if resolution is None:
            reasons.append(
                f"the register gives no resolution in a unit comparable with {req.unit}; "
                f"the recipe needs {wanted_resolution} {req.unit} or finer"
            )
        elif not resolution <= wanted_resolution:
            reasons.append(
                f"it reads to {_show(resolution)} {req.unit}, coarser than the {wanted_resolution} "
                f"{req.unit} the recipe needs"
            )
    return reasons


def _span_in(entry: Equipment, unit: str) -> tuple[Decimal, Decimal] | None:
    """The entry's range in `unit`: its `range`, else 0..capacity in its unit."""
    candidates = []
    if entry.range is not None:
        candidates.append(entry.range)
    if entry.capacity is not None and entry.unit:
        candidates.append((Decimal(0), entry.capacity, entry.unit))
    for low, high, from_unit in candidates:
        converted = (_converted(low, from_unit, unit), _converted(high, from_unit, unit))
        if converted[0] is not None and converted[1] is not None:
            return converted[0], converted[1]
    return None


def _converted(value: Decimal | None, from_unit: str | None, to_unit: str) -> Decimal | None:
    if value is None or not from_unit or not units.compatible(from_unit, to_unit):
        return None
    try:
        return units.convert(value, from_unit, to_unit)
    except (pint.errors.PintError, ArithmeticError):
        return None


def _show(value: Decimal) -> str:
    """150000, not 1.50E+5; 5, not 5.000 (a converted value has no written form)."""
    return format(value.normalize(), "f")


def _decimal(text: str | None) -> Decimal | None:
    return Decimal(text) if text is not None else None
