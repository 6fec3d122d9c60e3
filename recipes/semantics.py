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
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from recipes import units
from recipes.errors import RecipePath
from recipes.flow import COMPARISONS, REPEAT, STEP, Cond, Node, elements, procedure_flow, resolve
from recipes.yaml_safe import line_of

Finding = tuple[RecipePath, str]

SCALE_CLASS = "scale"
MIXER_CLASS = "mixer"


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
        self.weighed: dict[str, tuple[str, RecipePath]] = {}
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
            if code not in self.weighed:
                self.add(
                    path,
                    f"input '{code}' is never weighed; add a weigh phase with material: {code} "
                    "or remove the input from the formula",
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

    def equipment(self) -> None:
        entries = _entries(self.tree, "equipment")
        indexed = self.unique(entries, "role", ("equipment",), "equipment role")
        self.roles = {role: _text(item, "class") for role, (_, item) in indexed.items()}

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
        elif needed is not None and self.roles[role] != needed:
            self.add(
                (*path, "equipment"),
                f"role '{role}' is of class '{self.roles[role]}'; a "
                f"{phase['type']} phase needs a role of class '{needed}'",
            )

    def weigh(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        self.role(phase, path, SCALE_CLASS)
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
        if code in self.weighed:
            first_step, first_path = self.weighed[code]
            self.add(
                where,
                f"'{code}' is already weighed by step {first_step} "
                f"({self.line(first_path)}); each input is weighed exactly once",
            )
            return
        self.weighed[code] = (step, where)
        unit = _text(self.inputs[code][1], "unit")
        if unit is not None and units.is_known(unit) and not units.has_dimension(unit, units.MASS):
            self.add(
                where,
                f"input '{code}' is given in '{unit}', which is not a mass; a weigh "
                "phase needs the input's quantity in g, kg or mg",
            )

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
    ) -> None:
        pid = _text(phase, key)
        if pid is None:
            return
        where = (*path, key)
        if pid not in self.parameters:
            ids = sorted(self.parameters)
            self.add(
                where,
                f"unknown parameter '{pid}'{_did_you_mean(pid, ids)}; "
                f"formula.parameters lists: {_listing(ids)}",
            )
            return
        param = self.parameters[pid]
        unit, value = _text(param, "unit"), _number(param, "value")
        if unit is None or value is None or not units.is_known(unit):
            return  # reported at the parameter itself
        what = "a rotational speed such as rpm" if target == "rpm" else "a time such as min or s"
        if not fits(unit):
            self.add(where, f"parameter '{pid}' is in '{unit}', which is not {what}")
        elif value <= 0:
            self.add(where, f"parameter '{pid}' is {value} {unit}; a mix {key} must be > 0")
        elif units.convert(value, unit, target) % 1 != 0:
            exact = units.convert(value, unit, target).normalize()
            self.add(
                where,
                f"parameter '{pid}' = {value} {unit} is {exact:f} {target}; the "
                f"mixer takes whole {target}, so write a value that converts exactly",
            )

    def check(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        self.role(phase, path, None)
        limits = _mapping(phase, "limits")
        low, high = _number(limits, "low"), _number(limits, "high")
        if low is not None and high is not None and low > high:
            self.add((*path, "limits"), f"low {low} is greater than high {high}; swap them")
        self.unit(limits, (*path, "limits"))

    def instruction(self, phase: Mapping[str, Any], path: RecipePath, step: str) -> None:
        self.role(phase, path, None)

    _PHASE_CHECKS: dict[str, Callable[[_Checker, Mapping[str, Any], RecipePath, str], None]] = {
        "weigh": weigh,
        "mix": mix,
        "check": check,
        "instruction": instruction,
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
        conditional = conditional or node.when is not None
        if node.kind == STEP:
            self.step(node, conditional=conditional, repeated=repeated)
            return
        if node.kind == REPEAT:
            repeated = True
            if node.until is not None:
                self.until(node.until, own)
        if node.kind == "parallel":
            self.shared_equipment(node)
            for child in node.children:
                others = own - frozenset(s.step_id or "" for s in child.steps())
                self.visit(child, before, concurrent | others,
                           conditional=conditional, repeated=repeated)
            return
        seen = before
        for child in node.children:
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
        kind, _ = self.checker.kinds[step]
        if len(given) > 1:
            self.add(
                cond.path,
                f"tests {' and '.join(given)} at once; write one test per condition "
                "(passed, above, below, at_least or at_most)",
            )
        elif kind == "instruction":
            self.add(
                (*cond.path, "step"),
                f"step {step} is an instruction, which records no value or result; test a "
                "check, weigh or mix step",
            )
        elif cond.test == "passed" and kind == "weigh":
            self.add(
                (*cond.path, "passed"),
                f"step {step} is a weigh step, which always passes (a weight out of tolerance "
                "is refused at the scale); test its weight with above, below, at_least or "
                "at_most",
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

    def step(self, node: Node, *, conditional: bool, repeated: bool) -> None:
        kind = self.checker.kinds.get(node.step_id or "", ("", {}))[0]
        if kind != "weigh" or not (conditional or repeated):
            return
        where = "inside a repeat" if repeated else "under a condition (when)"
        self.add(
            (*node.path, "type"),
            f"weigh phase {node.step_id} is {where}; each formula input is dispensed exactly "
            "once, so weigh it before the repeat or condition and record additions during "
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
