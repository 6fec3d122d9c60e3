"""Checks that need the whole recipe: references, units, ranges, uniqueness.

They run on the loaded YAML tree, after the schema check, and are written defensively: a
part the schema already rejected (wrong type, missing key) is skipped here, so every
remaining problem in the file is still reported in the same run.

Decisions:
* Ids are unique per level (unit procedures in the procedure, operations in their unit
  procedure, phases in their operation); as ids cannot contain '/', step ids
  `unit_procedure/operation/phase` are then unique too.
* Each formula input is weighed by exactly one weigh phase. An input never weighed, or
  weighed twice, is an error, not a warning: the formula and the procedure must agree.
* A mix speed must be a rotational speed (rpm, rps, ...), not `Hz` or `1/min` (pint would
  convert those 2 pi wrong); at the nominal batch size speed and duration must convert to
  whole rpm and whole seconds, which is what the mixer is given.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from recipes import expr, units
from recipes.errors import RecipePath
from recipes.flow import COMPARISONS, REPEAT, STEP, Cond, Node, elements, procedure_flow, resolve
from recipes.yaml_safe import line_of

Finding = tuple[RecipePath, str]

SCALE_CLASS = "scale"
MIXER_CLASS = "mixer"

# Phase types that record a number a condition, a calculation or a label can use.
NUMERIC_TYPES = frozenset({"weigh", "pick", "mix", "check", "entry", "plc_read", "calc"})
# ... and those whose result can fail (they have limits): `passed` tests them.
JUDGED_TYPES = frozenset({"mix", "check", "entry", "plc_read"})
# Phases that name a formula input and dispense it (each input exactly once).
DISPENSING_TYPES = frozenset({"weigh", "pick"})
# Placeholders a label template may use besides {step:<phase>}.
LABEL_FIELDS = ("batch_id", "product_code", "product_name")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PYTHON_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")


def semantic_findings(tree: Any) -> list[Finding]:
    """Every semantic problem found in a loaded recipe tree."""
    if not isinstance(tree, Mapping):
        return []
    checker = _Checker(tree)
    checker.run()
    return checker.findings


def _mapping(node: Any, key: str) -> Mapping[str, Any]:
    value = node.get(key) if isinstance(node, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _entries(node: Any, key: str) -> list[tuple[int, Mapping[str, Any]]]:
    value = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, Mapping)]


def _text(node: Mapping[str, Any], key: str) -> str | None:
    value = node.get(key)
    return value if isinstance(value, str) else None


def _number(node: Mapping[str, Any], key: str) -> Decimal | None:
    value = node.get(key)
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    return Decimal(value)


_PLC = "<plc>"  # role() requirement: any PLC-driven class (not a scale)


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 2400, 0.05."""
    text = format(value.normalize(), "f")
    return text


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _listing(choices: list[str]) -> str:
    return ", ".join(choices) if choices else "nothing"


class _Checker:
    def __init__(self, tree: Mapping[str, Any]) -> None:
        self.tree = tree
        self.findings: list[Finding] = []
        self.inputs: dict[str, tuple[RecipePath, Mapping[str, Any]]] = {}
        self.parameters: dict[str, Mapping[str, Any]] = {}
        self.roles: dict[str, str | None] = {}
        # input -> (step, path, phase type) of the phase that dispenses it
        self.dispensed: dict[str, tuple[str, RecipePath, str]] = {}
        self.equipment_roles: dict[str, Mapping[str, Any]] = {}
        # step id -> (phase type, phase), for the checks of conditions on steps
        self.kinds: dict[str, tuple[str, Mapping[str, Any]]] = {}

    def add(self, path: RecipePath, message: str) -> None:
        self.findings.append((path, message))

    def line(self, path: RecipePath) -> str:
        line = line_of(self.tree, path)
        return f"line {line}" if line is not None else "elsewhere"

    def unique(
        self, items: list[tuple[int, Mapping[str, Any]]], key: str, base: RecipePath, what: str
    ) -> dict[str, tuple[RecipePath, Mapping[str, Any]]]:
        """Index `items` by `key`, reporting each repeat; the first occurrence wins."""
        return self.unique_at([((*base, i), item) for i, item in items], key, what)

    def unique_at(
        self, items: list[tuple[RecipePath, Mapping[str, Any]]], key: str, what: str
    ) -> dict[str, tuple[RecipePath, Mapping[str, Any]]]:
        """`unique` for items located anywhere (e.g. inside parallel and repeat blocks)."""
        seen: dict[str, tuple[RecipePath, Mapping[str, Any]]] = {}
        for item_path, item in items:
            value = _text(item, key)
            if value is None:
                continue
            path = (*item_path, key)
            if value in seen:
                first = seen[value][0]
                self.add(
                    path,
                    f"duplicate {what} '{value}', already used at {self.line(first)}; "
                    f"give each {what} a different value",
                )
            else:
                seen[value] = (path, item)
        return seen

    def unit(self, node: Mapping[str, Any], path: RecipePath) -> bool:
        unit = _text(node, "unit")
        if unit is None:
            return False
        problem = units.unit_problem(unit)
        if problem:
            self.add((*path, "unit"), problem)
        return problem is None

    def run(self) -> None:
        self.header(_mapping(self.tree, "header"))
        formula = _mapping(self.tree, "formula")
        self.formula_inputs(formula)
        self.formula_outputs(formula)
        self.formula_parameters(formula)
        self.equipment()
        self.procedure(_mapping(self.tree, "procedure"))
        for code, (path, _) in self.inputs.items():
            if code not in self.dispensed:
                self.add(
                    path,
                    f"input '{code}' is never weighed or picked; add a weigh or pick phase with "
                    f"material: {code} or remove the input from the formula",
                )

    # -- header ---------------------------------------------------------------------------

    def header(self, header: Mapping[str, Any]) -> None:
        size = _mapping(header, "batch_size")
        base: RecipePath = ("header", "batch_size")
        nominal, low, high = (_number(size, k) for k in ("nominal", "min", "max"))
        if low is not None and high is not None and low > high:
            self.add((*base, "min"), f"min {low} is greater than max {high}; swap them")
        elif nominal is not None and low is not None and nominal < low:
            self.add(
                (*base, "nominal"),
                f"nominal {nominal} is below min {low}; min <= nominal <= max must hold",
            )
        elif nominal is not None and high is not None and nominal > high:
            self.add(
                (*base, "nominal"),
                f"nominal {nominal} is above max {high}; min <= nominal <= max must hold",
            )
        self.unit(size, base)
        effective = self.date(header, "effective")
        expiry = self.date(header, "expiry")
        if effective and expiry and not effective < expiry:
            self.add(
                ("header", "expiry"),
                f"expiry {expiry} is not after effective "
                f"{effective}; a recipe expires after it becomes effective",
            )

    def date(self, header: Mapping[str, Any], key: str) -> date | None:
        text = _text(header, key)
        if text is None or len(text) != 10:
            return None  # absent, or the schema reports the format
        try:
            return date.fromisoformat(text)
        except ValueError:
            self.add(("header", key), f"'{text}' is not a calendar date; write YYYY-MM-DD")
            return None

    # -- formula and equipment ------------------------------------------------------------

    def formula_inputs(self, formula: Mapping[str, Any]) -> None:
        base: RecipePath = ("formula", "inputs")
        entries = _entries(formula, "inputs")
        self.inputs = self.unique(entries, "material", base, "input material")
        for index, item in entries:
            if self.unit(item, (*base, index)):
                self.tolerance(item, (*base, index))

    def tolerance(self, item: Mapping[str, Any], path: RecipePath) -> None:
        tolerance = _mapping(item, "tolerance")
        absolute, quantity = _number(tolerance, "absolute"), _number(item, "quantity")
        if absolute is None or not self.unit(tolerance, (*path, "tolerance")):
            return
        unit, tol_unit = str(item["unit"]), str(tolerance["unit"])
        if not units.compatible(unit, tol_unit):
            self.add(
                (*path, "tolerance", "unit"),
                f"'{tol_unit}' cannot be converted to the "
                f"input's unit '{unit}'; give the tolerance in {unit} or a unit like it",
            )
        elif quantity is not None and units.convert(absolute, tol_unit, unit) >= quantity:
            self.add(
                (*path, "tolerance", "absolute"),
                f"{absolute} {tol_unit} is not smaller "
                f"than the quantity {quantity} {unit}; the lower limit would be zero",
            )

    def formula_outputs(self, formula: Mapping[str, Any]) -> None:
        base: RecipePath = ("formula", "outputs")
        entries = _entries(formula, "outputs")
        self.unique(entries, "material", base, "output material")
        for index, item in entries:
            yield_range = _mapping(item, "expected_yield")
            path = (*base, index, "expected_yield")
            low, high = _number(yield_range, "min"), _number(yield_range, "max")
            if low is not None and high is not None and low > high:
                self.add(path, f"min {low} is greater than max {high}; swap them")
            self.unit(yield_range, path)

    def formula_parameters(self, formula: Mapping[str, Any]) -> None:
        base: RecipePath = ("formula", "parameters")
        entries = _entries(formula, "parameters")
        indexed = self.unique(entries, "id", base, "parameter id")
        self.parameters = {pid: item for pid, (_, item) in indexed.items()}
        for index, item in entries:
            self.unit(item, (*base, index))
            value, low, high = (_number(item, k) for k in ("value", "min", "max"))
            if low is not None and high is not None and low > high:
                self.add((*base, index, "min"), f"min {low} is greater than max {high}; swap them")
            elif value is not None and low is not None and value < low:
                self.add(
                    (*base, index, "value"),
                    f"{value} is below the parameter's min {low}; min <= value <= max must hold",
                )
            elif value is not None and high is not None and value > high:
                self.add(
                    (*base, index, "value"),
                    f"{value} is above the parameter's max {high}; min <= value <= max must hold",
                )

    def equipment(self) -> None:
        entries = _entries(self.tree, "equipment")
        indexed = self.unique(entries, "role", ("equipment",), "equipment role")
        self.roles = {role: _text(item, "class") for role, (_, item) in indexed.items()}
        self.equipment_roles = {role: item for role, (_, item) in indexed.items()}
        for index, item in entries:
            path: RecipePath = ("equipment", index, "range")
            span = _mapping(item, "range")
            low, high = _number(span, "min"), _number(span, "max")
            if low is not None and high is not None and low > high:
                self.add((*path, "min"), f"min {low} is greater than max {high}; swap them")
            self.unit(span, path)

    def role_range(self, role: str) -> tuple[Decimal, Decimal, str] | None:
        """The range a role's equipment must cover, when declared and usable."""
        span = _mapping(self.equipment_roles.get(role), "range")
        low, high, unit = _number(span, "min"), _number(span, "max"), _text(span, "unit")
        if low is None or high is None or unit is None or low > high or not units.is_known(unit):
            return None
        return low, high, unit

    def batch_factors(self) -> tuple[Decimal, Decimal] | None:
        """(smallest, largest) ordered batch size / nominal, when the header is usable."""
        size = _mapping(_mapping(self.tree, "header"), "batch_size")
        nominal, low, high = (_number(size, k) for k in ("nominal", "min", "max"))
        if nominal is None or low is None or high is None or nominal <= 0 or low > high:
            return None
        return low / nominal, high / nominal

    # -- procedure ------------------------------------------------------------------------

    def procedure(self, procedure: Mapping[str, Any]) -> None:
        # Elements inside parallel and repeat blocks belong to the level they are written at.
        unit_procedures = elements(procedure, 0, ("procedure",))
        self.unique_at(unit_procedures, "id", "unit procedure id")
        for up_path, up in unit_procedures:
            operations = elements(up, 1, up_path)
            self.unique_at(operations, "id", "operation id")
            for op_path, op in operations:
                phases = elements(op, 2, op_path)
                self.unique_at(phases, "id", "phase id")
                for phase_path, phase in phases:
                    step = "/".join(str(x.get("id")) for x in (up, op, phase))
                    self.phase(phase, phase_path, step)
                    self.kinds[step] = (str(phase.get("type")), phase)
        _FlowChecker(self).run(procedure_flow(procedure))

    def phase(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        check = self._PHASE_CHECKS.get(str(phase.get("type")))
        if check is not None:
            check(self, phase, path, step)

    def role(self, phase: Mapping[str, Any], path: RecipePath, needed: str | None) -> None:
        role = _text(phase, "equipment")
        if role is None:
            return
        if role not in self.roles:
            roles = sorted(self.roles)
            self.add(
                (*path, "equipment"),
                f"unknown equipment role '{role}'"
                f"{_did_you_mean(role, roles)}; the equipment section declares: "
                f"{_listing(roles)}",
            )
        elif needed == _PLC and self.roles[role] == SCALE_CLASS:
            self.add(
                (*path, "equipment"),
                f"role '{role}' is of class 'scale', which is read over MT-SICS and has no PLC "
                f"tags; a {phase['type']} phase needs a PLC-driven role (e.g. class cooker or "
                "mixer)",
            )
        elif needed not in (None, _PLC) and self.roles[role] != needed:
            self.add(
                (*path, "equipment"),
                f"role '{role}' is of class '{self.roles[role]}'; a "
                f"{phase['type']} phase needs a role of class '{needed}'",
            )

    def weigh(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        self.role(phase, path, SCALE_CLASS)
        self.dispense(phase, path, step)

    def pick(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        self.role(phase, path, None)
        self.dispense(phase, path, step)

    def dispense(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        code = _text(phase, "material")
        if code is None:
            return
        where = (*path, "material")
        if code not in self.inputs:
            codes = sorted(self.inputs)
            self.add(
                where,
                f"unknown material '{code}'{_did_you_mean(code, codes)}; "
                f"formula.inputs lists: {_listing(codes)}",
            )
            return
        if code in self.dispensed:
            first_step, first_path, first_type = self.dispensed[code]
            verb = "picked" if first_type == "pick" else "weighed"
            self.add(
                where,
                f"'{code}' is already {verb} by step {first_step} "
                f"({self.line(first_path)}); each input is weighed or picked exactly once",
            )
            return
        self.dispensed[code] = (step, where, str(phase.get("type")))
        item = self.inputs[code][1]
        unit = _text(item, "unit")
        if phase.get("type") != "weigh" or unit is None or not units.is_known(unit):
            return
        if not units.has_dimension(unit, units.MASS):
            self.add(
                where,
                f"input '{code}' is given in '{unit}', which is not a mass; a weigh "
                "phase needs the input's quantity in g, kg or mg",
            )
            return
        if "target" not in phase:  # a computed target is known only when the batch runs
            self.scale_fits(phase, path, item, unit)

    def scale_fits(
        self, phase: Mapping[str, Any], path: RecipePath, item: Mapping[str, Any], unit: str
    ) -> None:
        """The target at every batch size lies in the scale's range, and the scale resolves
        the tolerance."""
        role = _text(phase, "equipment")
        span = self.role_range(role) if role in self.roles else None
        factors = self.batch_factors()
        quantity = _number(item, "quantity")
        if span is None or factors is None or quantity is None or role is None:
            return
        low, high, span_unit = span
        where = (*path, "equipment")
        if not units.compatible(unit, span_unit):
            self.add(
                where,
                f"role '{role}' has its range in '{span_unit}', which is not a mass; give the "
                "range of a scale in g or kg",
            )
            return
        scaled = item.get("scaled", True) is not False
        smallest, largest = (quantity * f if scaled else quantity for f in factors)
        biggest = units.convert(largest, unit, span_unit)
        least = units.convert(smallest, unit, span_unit)
        if biggest > high:
            self.add(
                where,
                f"at the largest batch size the target is {_plain(largest)} {unit}, above the "
                f"range of role '{role}' ({_plain(low)} to {_plain(high)} {span_unit}); require "
                "a larger range or lower the maximum batch size",
            )
        elif least < low:
            self.add(
                where,
                f"at the smallest batch size the target is {_plain(smallest)} {unit}, below the "
                f"range of role '{role}' ({_plain(low)} to {_plain(high)} {span_unit}); require "
                "a range reaching lower or raise the minimum batch size",
            )
        resolution = _number(self.equipment_roles[role], "resolution")
        band = self.tolerance_band(item, smallest, unit)
        if resolution is not None and band is not None:
            band_in_range = units.convert(band, unit, span_unit)
            if band_in_range < resolution:
                self.add(
                    where,
                    f"the tolerance at the smallest batch size is +/-{_plain(band_in_range)} "
                    f"{span_unit}, finer than the resolution {_plain(resolution)} {span_unit} "
                    f"of role '{role}'; require a finer resolution or widen the tolerance",
                )

    @staticmethod
    def tolerance_band(item: Mapping[str, Any], target: Decimal, unit: str) -> Decimal | None:
        tolerance = _mapping(item, "tolerance")
        percent, absolute = _number(tolerance, "percent"), _number(tolerance, "absolute")
        if percent is not None:
            return target * percent / 100
        tol_unit = _text(tolerance, "unit")
        if absolute is None or tol_unit is None or not units.compatible(tol_unit, unit):
            return None
        return units.convert(absolute, tol_unit, unit)

    def mix(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        self.role(phase, path, MIXER_CLASS)
        self.parameter(phase, path, "speed", units.is_rotational_speed, "rpm")
        self.parameter(phase, path, "duration", lambda u: units.has_dimension(u, units.TIME), "s")

    def parameter(
        self,
        phase: Mapping[str, Any],
        path: RecipePath,
        key: str,
        fits: Callable[[str], bool],
        target: str,
    ) -> Decimal | None:
        """Check a phase's reference to a parameter; its value in `target` when usable."""
        pid = _text(phase, key)
        param = self.known_parameter(phase, path, key)
        if param is None or pid is None:
            return None
        where = (*path, key)
        unit, value = _text(param, "unit"), _number(param, "value")
        if unit is None or value is None or not units.is_known(unit):
            return None  # reported at the parameter itself
        what = "a rotational speed such as rpm" if target == "rpm" else "a time such as min or s"
        kind = str(phase.get("type"))
        if not fits(unit):
            self.add(where, f"parameter '{pid}' is in '{unit}', which is not {what}")
        elif value <= 0:
            self.add(where, f"parameter '{pid}' is {value} {unit}; a {kind} {key} must be > 0")
        elif units.convert(value, unit, target) % 1 != 0:
            exact = units.convert(value, unit, target).normalize()
            device = "mixer" if kind == "mix" else "hold time"
            self.add(
                where,
                f"parameter '{pid}' = {value} {unit} is {exact:f} {target}; the "
                f"{device} takes whole {target}, so write a value that converts exactly",
            )
        else:
            return units.convert(value, unit, target)
        return None

    def check(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        self.role(phase, path, None)
        self.limits(phase, path, None)

    def entry(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        self.role(phase, path, None)
        value_type = phase.get("value_type", "decimal")
        if value_type in ("text", "boolean"):
            for key in ("unit", "limits", "alert_limits", "on_fail"):
                if key in phase:
                    self.add(
                        (*path, key),
                        f"a {value_type} entry has no {key.replace('_', ' ')}; remove "
                        f"'{key}' or make the entry a decimal or integer",
                    )
            return
        unit = _text(phase, "unit")
        if unit is not None and not self.unit(phase, path):
            return
        if unit is None and "limits" not in phase:
            self.add(
                (*path, "label"),
                f"{_a(str(value_type))} entry needs a unit: add unit: (e.g. percent, kg, degC, or "
                "count for a number of pieces) or limits with a unit",
            )
            return
        self.limits(phase, path, unit)
        if value_type == "integer":
            for key in ("limits", "alert_limits"):
                for end in ("low", "high"):
                    value = _number(_mapping(phase, key), end)
                    if value is not None and value % 1 != 0:
                        self.add(
                            (*path, key, end),
                            f"{value} is not a whole number; an integer entry's limits are "
                            "whole numbers",
                        )

    def limits(self, phase: Mapping[str, Any], path: RecipePath, unit: str | None) -> None:
        """Action limits low <= high, alert limits inside them, units convertible."""
        action = self.limit_pair(phase, path, "limits", unit)
        base_unit = unit or (_text(_mapping(phase, "limits"), "unit") if action else None)
        alert = self.limit_pair(phase, path, "alert_limits", base_unit)
        if action is None or alert is None:
            return
        (a_low, a_high, a_unit), (w_low, w_high, w_unit) = action, alert
        low, high = units.convert(w_low, w_unit, a_unit), units.convert(w_high, w_unit, a_unit)
        if low < a_low or high > a_high:
            self.add(
                (*path, "alert_limits"),
                f"alert limits {_plain(w_low)} to {_plain(w_high)} {w_unit} are not inside the "
                f"action limits {_plain(a_low)} to {_plain(a_high)} {a_unit}; alert limits warn "
                "before the action limits are reached, so make them narrower",
            )

    def limit_pair(
        self, phase: Mapping[str, Any], path: RecipePath, key: str, unit: str | None
    ) -> tuple[Decimal, Decimal, str] | None:
        limits = _mapping(phase, key)
        low, high = _number(limits, "low"), _number(limits, "high")
        if low is not None and high is not None and low > high:
            self.add((*path, key), f"low {low} is greater than high {high}; swap them")
            return None
        if not self.unit(limits, (*path, key)) or low is None or high is None:
            return None
        own = str(limits["unit"])
        if unit is not None and units.is_known(unit) and not units.compatible(own, unit):
            self.add(
                (*path, key, "unit"),
                f"'{own}' cannot be converted to the value's unit '{unit}'; give the "
                f"{key.replace('_', ' ')} in {unit} or a unit like it",
            )
            return None
        return low, high, own

    def instruction(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        self.role(phase, path, None)

    def signoff(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        pass  # role and meaning are enums the schema checks

    def timer(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        self.role(phase, path, None)
        time = (lambda u: units.has_dimension(u, units.TIME)), "s"
        shortest = self.parameter(phase, path, "min_duration", *time)
        longest = self.parameter(phase, path, "max_duration", *time)
        if shortest is not None and longest is not None and shortest > longest:
            self.add(
                (*path, "max_duration"),
                f"the maximum hold time ({_plain(longest)} s) is shorter than the minimum "
                f"({_plain(shortest)} s); swap the parameters",
            )

    def plc_set(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        self.role(phase, path, _PLC)
        unit = _text(phase, "unit")
        if unit is not None and not self.unit(phase, path):
            return
        setpoint = phase.get("setpoint")
        where = (*path, "setpoint")
        if isinstance(setpoint, str):
            param = self.known_parameter(phase, path, "setpoint")
            p_unit = _text(param or {}, "unit")
            value = _number(param or {}, "value")
            if param is None or p_unit is None or value is None or not units.is_known(p_unit):
                return
            if unit is not None and not units.compatible(p_unit, unit):
                self.add(
                    where,
                    f"parameter '{setpoint}' is in '{p_unit}', which cannot be converted to the "
                    f"tag's unit '{unit}'",
                )
                return
            self.setpoint_in_range(phase, path, value, p_unit, param.get("scaled") is True)
        elif isinstance(setpoint, int | Decimal) and not isinstance(setpoint, bool) and unit:
            # (Without a unit the number is written as it is: a switch, 1 on, 0 off.)
            self.setpoint_in_range(phase, path, Decimal(setpoint), unit, False)

    def setpoint_in_range(
        self, phase: Mapping[str, Any], path: RecipePath, value: Decimal, unit: str, scaled: bool
    ) -> None:
        role = _text(phase, "equipment")
        span = self.role_range(role) if role in self.roles else None
        factors = self.batch_factors() if scaled else (Decimal(1), Decimal(1))
        if span is None or factors is None or role is None:
            return
        low, high, span_unit = span
        if not units.compatible(unit, span_unit):
            return  # the range is about something else (e.g. a mixer's volume)
        for factor in factors:
            converted = units.convert(value * factor, unit, span_unit)
            if not low <= converted <= high:
                self.add(
                    (*path, "setpoint"),
                    f"the setpoint {_plain(value * factor)} {unit} is outside the range of "
                    f"role '{role}' ({_plain(low)} to {_plain(high)} {span_unit}); change the "
                    "setpoint or require equipment with a wider range",
                )
                return

    def plc_read(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        self.role(phase, path, _PLC)
        unit = _text(phase, "unit")
        if unit is not None and self.unit(phase, path):
            self.limits(phase, path, unit)

    def calc(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        self.unit(phase, path)  # the expression is checked with the flow (earlier phases)

    def label(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        self.role(phase, path, None)

    def known_parameter(
        self, phase: Mapping[str, Any], path: RecipePath, key: str
    ) -> Mapping[str, Any] | None:
        pid = _text(phase, key)
        if pid is None:
            return None
        if pid not in self.parameters:
            ids = sorted(self.parameters)
            self.add(
                (*path, key),
                f"unknown parameter '{pid}'{_did_you_mean(pid, ids)}; "
                f"formula.parameters lists: {_listing(ids)}",
            )
            return None
        return self.parameters[pid]

    _PHASE_CHECKS: dict[str, Callable[[_Checker, Mapping[str, Any], RecipePath, str], None]] = {
        "weigh": weigh,
        "mix": mix,
        "check": check,
        "entry": entry,
        "instruction": instruction,
        "timer": timer,
        "plc_set": plc_set,
        "plc_read": plc_read,
        "pick": pick,
        "calc": calc,
        "label": label,
        "signoff": signoff,
    }


class _FlowChecker:
    """Checks of procedure logic: conditions refer to steps that exist, record something
    and have run before they are tested; loops test a step they repeat; inputs are dispensed
    exactly once; parallel branches do not share equipment."""

    def __init__(self, checker: _Checker) -> None:
        self.checker = checker
        self.step_ids = list(checker.kinds)

    def add(self, path: RecipePath, message: str) -> None:
        self.checker.add(path, message)

    def run(self, root: Node) -> None:
        self.visit(root, frozenset(), frozenset(), conditional=False, repeated=False)

    def visit(
        self,
        node: Node,
        before: frozenset[str],
        concurrent: frozenset[str],
        *,
        conditional: bool,
        repeated: bool,
    ) -> None:
        """`before`: steps that have run when `node` starts; `concurrent`: steps of parallel
        branches running beside it."""
        own = frozenset(s.step_id or "" for s in node.steps())
        if node.when is not None:
            self.when(node.when, before, concurrent, own)
        if node.otherwise:
            # Either the node or its `otherwise` runs, never both: each starts from `before`.
            self.visit_all(node.otherwise, before, concurrent, conditional=True,
                           repeated=repeated)
        conditional = conditional or node.when is not None
        if node.kind == STEP:
            self.step(node, before, concurrent, conditional=conditional, repeated=repeated)
            return
        if node.kind == REPEAT:
            repeated = True
            if node.until is not None:
                self.until(node.until, own)
        if node.kind == "parallel":
            self.shared_equipment(node)
            body = frozenset(s.step_id or "" for s in node.guarded_steps())
            for child in node.children:
                others = body - frozenset(s.step_id or "" for s in child.steps())
                self.visit(child, before, concurrent | others,
                           conditional=conditional, repeated=repeated)
            return
        self.visit_all(node.children, before, concurrent, conditional=conditional,
                       repeated=repeated)

    def visit_all(
        self,
        nodes: list[Node],
        before: frozenset[str],
        concurrent: frozenset[str],
        *,
        conditional: bool,
        repeated: bool,
    ) -> None:
        seen = before
        for child in nodes:
            self.visit(child, seen, concurrent, conditional=conditional, repeated=repeated)
            seen = seen | frozenset(s.step_id or "" for s in child.steps())

    def target(self, cond: Cond) -> str | None:
        """The step a condition tests, after checking the reference and the test."""
        if cond.ref is None:
            return None  # the schema reports the missing `step`
        where = (*cond.path, "step")
        found = resolve(cond.ref, self.step_ids)
        if not found:
            names = sorted({s.rsplit("/", 1)[-1] for s in self.step_ids})
            self.add(
                where,
                f"no step '{cond.ref}'{_did_you_mean(cond.ref.rsplit('/', 1)[-1], names)}; "
                "write a phase id, operation/phase or unit_procedure/operation/phase",
            )
            return None
        if len(found) > 1:
            self.add(
                where,
                f"'{cond.ref}' could mean {' or '.join(found)}; write enough of the step id "
                "(operation/phase or unit_procedure/operation/phase) to name one step",
            )
            return None
        step = found[0]
        # One problem per condition: a test that cannot work makes its order moot.
        return step if self.test(cond, step) else None

    def test(self, cond: Cond, step: str) -> bool:
        raw = _mapping_at(self.checker.tree, cond.path)
        given = [t for t in ("passed", *COMPARISONS) if t in raw]
        kind, phase = self.checker.kinds[step]
        if len(given) > 1:
            self.add(
                cond.path,
                f"tests {' and '.join(given)} at once; write one test per condition "
                "(passed, above, below, at_least or at_most)",
            )
        elif kind not in NUMERIC_TYPES:
            self.add(
                (*cond.path, "step"),
                f"step {step} is {_a(kind)}, which records no value or result; test a "
                "check, entry, weigh, pick, plc_read, calc or mix step",
            )
        elif kind == "entry" and phase.get("value_type") in ("text", "boolean"):
            self.add(
                (*cond.path, "step"),
                f"step {step} records {phase.get('value_type')}, not a number or a result; "
                "conditions test numeric steps",
            )
        elif cond.test == "passed" and kind in ("weigh", "pick"):
            self.add(
                (*cond.path, "passed"),
                f"step {step} is {_a(kind)} step, which always passes (a quantity out of "
                "tolerance is refused when it is captured); test its quantity with above, "
                "below, at_least or at_most",
            )
        elif cond.test == "passed" and (kind not in JUDGED_TYPES or (
                kind != "mix" and "limits" not in phase)):
            self.add(
                (*cond.path, "passed"),
                f"step {step} has no limits, so it always passes; give it limits or test its "
                "value with above, below, at_least or at_most",
            )
        else:
            return True
        return False

    def when(
        self, cond: Cond, before: frozenset[str], concurrent: frozenset[str], own: frozenset[str]
    ) -> None:
        step = self.target(cond)
        if step is None or step in before:
            return
        where = (*cond.path, "step")
        if step in own:
            self.add(
                where,
                f"the condition tests {step}, which it guards: that step has not run when the "
                "condition is decided, so it would never run; test a step that runs earlier",
            )
        elif step in concurrent:
            self.add(
                where,
                f"{step} runs in a parallel branch beside this one, so it may not be recorded "
                "when the condition is decided; put the condition after the parallel block",
            )
        else:
            self.add(
                where,
                f"{step} runs later, so the condition is decided before it is recorded and the "
                "steps it guards would never run; test a step that runs before them",
            )

    def until(self, cond: Cond, body: frozenset[str]) -> None:
        step = self.target(cond)
        if step is not None and step not in body:
            self.add(
                (*cond.path, "step"),
                f"{step} is not inside this repeat, so repeating cannot change its result; "
                "test a step the repeat runs (e.g. the check after the rework)",
            )

    def step(
        self,
        node: Node,
        before: frozenset[str],
        concurrent: frozenset[str],
        *,
        conditional: bool,
        repeated: bool,
    ) -> None:
        kind, phase = self.checker.kinds.get(node.step_id or "", ("", {}))
        refs = _References(self, node, before, concurrent)
        if kind == "calc":
            refs.expression(phase)
        if kind in DISPENSING_TYPES and isinstance(phase.get("target"), Mapping):
            refs.target(phase)
        if kind == "label":
            refs.template(phase)
        if kind not in DISPENSING_TYPES or not (conditional or repeated):
            return
        where = "inside a repeat" if repeated else "under a condition (when)"
        self.add(
            (*node.path, "type"),
            f"{kind} phase {node.step_id} is {where}; each formula input is dispensed exactly "
            f"once, so {kind} it before the repeat or condition and record additions during "
            "rework as instruction or check phases",
        )

    def shared_equipment(self, node: Node) -> None:
        used: dict[str, int] = {}
        for index, child in enumerate(node.children):
            roles = {
                _text(self.checker.kinds.get(s.step_id or "", ("", {}))[1], "equipment")
                for s in child.steps()
            }
            for role in sorted(r for r in roles if r):
                if role in used:
                    self.add(
                        (*node.path, "parallel", index),
                        f"this branch and branch {used[role] + 1} both use equipment role "
                        f"'{role}' while running at the same time; declare a second role (and "
                        "equipment) or run them one after the other",
                    )
                else:
                    used[role] = index


def _mapping_at(tree: Any, path: RecipePath) -> Mapping[str, Any]:
    node = tree
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return {}
    return node if isinstance(node, Mapping) else {}


def _a(kind: str) -> str:
    """`an instruction`, `a plc_set`: the phase type with its article."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


class _References:
    """References from one phase to others (calc expressions, computed targets, label
    placeholders): each must name one phase that has run when this one starts and that
    records what is used."""

    def __init__(
        self, flow: _FlowChecker, node: Node, before: frozenset[str], concurrent: frozenset[str]
    ) -> None:
        self.flow, self.node, self.before, self.concurrent = flow, node, before, concurrent
        self.kinds = flow.checker.kinds

    def earlier(self, ref: str, where: RecipePath, use: str) -> str | None:
        """The step `ref` names, when it exists, is unambiguous and runs before this one."""
        found = resolve(ref, self.flow.step_ids)
        if not found:
            names = sorted({s.rsplit("/", 1)[-1] for s in self.flow.step_ids})
            self.flow.add(
                where,
                f"no step '{ref}'{_did_you_mean(ref.rsplit('/', 1)[-1], names)}; "
                "write a phase id, operation/phase or unit_procedure/operation/phase",
            )
            return None
        if len(found) > 1:
            self.flow.add(
                where,
                f"'{ref}' could mean {' or '.join(found)}; write enough of the step id "
                "(operation/phase or unit_procedure/operation/phase) to name one step",
            )
            return None
        step = found[0]
        if step == self.node.step_id:
            self.flow.add(where, f"{use} refers to its own phase; name a phase that runs earlier")
            return None
        if step not in self.before:
            place = ("runs in a parallel branch beside this one" if step in self.concurrent
                     else "runs later")
            self.flow.add(
                where,
                f"{step} {place}, so it is not recorded when {self.node.step_id} runs; "
                f"{use} can only use phases that run before it",
            )
            return None
        return step

    def numeric(self, step: str, where: RecipePath, use: str) -> bool:
        kind, phase = self.kinds[step]
        if kind in NUMERIC_TYPES and not (
            kind == "entry" and phase.get("value_type") in ("text", "boolean")
        ):
            return True
        what = (f"a {phase.get('value_type')} entry" if kind == "entry" else _a(kind))
        self.flow.add(
            where,
            f"{step} is {what}, which records no number; {use} needs a weigh, pick, check, "
            "entry, plc_read or calc phase",
        )
        return False

    def expression(self, phase: Mapping[str, Any]) -> None:
        text = phase.get("expression")
        if not isinstance(text, str):
            return
        where = (*self.node.path, "expression")
        try:
            names = expr.names(text)
        except expr.ExpressionError as exc:
            self.flow.add(where, f"{exc}")
            return
        parameters = self.flow.checker.parameters
        phase_ids = {s.rsplit("/", 1)[-1] for s in self.flow.step_ids}
        # `weigh-a` parses as weigh minus a: say so once instead of two unknown names.
        hyphenated = sorted(
            p for p in phase_ids
            if "-" in p and re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])", text)
        )
        for phase_id in hyphenated:
            self.flow.add(
                where,
                f"'{phase_id}' reads as a subtraction: '-' is minus in an expression; rename "
                f"the phase to '{phase_id.replace('-', '_')}' to use its value",
            )
        parts = {part for p in hyphenated for part in p.split("-")}
        for name in sorted(names):
            if name in parts and name not in parameters and name not in phase_ids:
                continue
            if name in parameters and name in phase_ids:
                self.flow.add(
                    where,
                    f"'{name}' is both a parameter and a phase id; rename one of them so the "
                    "expression means one thing",
                )
            elif name in parameters:
                continue
            elif name in phase_ids:
                step = self.earlier(name, where, "the expression")
                if step is not None:
                    self.numeric(step, where, "the expression")
            else:
                known = sorted(set(parameters) | {p for p in phase_ids if _PYTHON_NAME.match(p)})
                self.flow.add(
                    where,
                    f"unknown name '{name}'{_did_you_mean(name, known)}; an expression "
                    "uses formula parameter ids and the ids of phases that run before it",
                )

    def target(self, phase: Mapping[str, Any]) -> None:
        ref = _mapping(phase, "target").get("calc")
        if not isinstance(ref, str):
            return
        where = (*self.node.path, "target", "calc")
        step = self.earlier(ref, where, "the target")
        if step is None:
            return
        kind, calc = self.kinds[step]
        if kind != "calc":
            self.flow.add(
                where,
                f"{step} is {_a(kind)} phase; a target comes from a calc phase (the computed "
                "quantity)",
            )
            return
        code = _text(phase, "material")
        item = self.flow.checker.inputs.get(code or "", ((), {}))[1]
        unit, calc_unit = _text(item, "unit"), _text(calc, "unit")
        if unit is not None and calc_unit is not None and calc_unit != unit:
            self.flow.add(
                where,
                f"{step} gives its result in '{calc_unit}', but input '{code}' is dispensed in "
                f"'{unit}'; give the calc unit: {unit} (scale its expression accordingly)",
            )

    def template(self, phase: Mapping[str, Any]) -> None:
        text = phase.get("template")
        if not isinstance(text, str):
            return
        where = (*self.node.path, "template")
        stripped = _PLACEHOLDER.sub("", text)
        if "{" in stripped or "}" in stripped:
            self.flow.add(where, "a '{' or '}' is not closed; write placeholders as {batch_id}")
            return
        for field_text in _PLACEHOLDER.findall(text):
            name, _, ref = field_text.partition(":")
            if name == "step" and ref:
                step = self.earlier(ref, where, "the label")
                kind = self.kinds[step][0] if step is not None else "entry"
                if kind not in NUMERIC_TYPES | {"entry"}:
                    self.flow.add(
                        where,
                        f"{step} is {_a(kind)}, which records no value; a {{step:...}} "
                        "placeholder prints a recorded value (entry, check, weigh, pick, "
                        "plc_read, calc)",
                    )
            elif field_text not in LABEL_FIELDS:
                self.flow.add(
                    where,
                    f"unknown placeholder {{{field_text}}}; a label may use "
                    + ", ".join(f"{{{f}}}" for f in LABEL_FIELDS)
                    + " and {step:<phase id>}",
                )
