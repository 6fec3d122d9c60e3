"""The typed master recipe: frozen dataclasses mirroring the YAML (ISA-88 master recipe).

Built by `build_recipe` from a tree that already passed the schema and the semantic
checks, so construction here never has to explain errors. Quantities are `Decimal`
exactly as written; dates are `datetime.date`; sequences are tuples.

Extension points for later language versions: a new phase type is a new `Phase` subclass
(plus a schema branch, a semantic check and a compile rule). `Procedure.steps()` is every
phase once in written order; `Procedure.flow` says how they run when the recipe uses
`parallel:`, `repeat:` or `when:` (None: one after the other).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from recipes import flow as written
from recipes.errors import RecipePath, format_path
from recipes.yaml_safe import LineDict, LineList

LANGUAGE_VERSION = 1


@dataclass(frozen=True)
class Product:
    code: str
    name: str


@dataclass(frozen=True)
class BatchSize:
    """Orderable batch sizes; formula quantities are written for `nominal`."""

    nominal: Decimal
    min: Decimal
    max: Decimal
    unit: str


@dataclass(frozen=True)
class Header:
    id: str
    name: str
    version: str
    product: Product
    batch_size: BatchSize
    author: str
    description: str = ""
    effective: date | None = None
    expiry: date | None = None


@dataclass(frozen=True)
class Tolerance:
    """Either `percent` of the target, or `absolute` in `unit` (not scaled with the batch)."""

    percent: Decimal | None = None
    absolute: Decimal | None = None
    unit: str | None = None


@dataclass(frozen=True)
class MaterialInput:
    material: str
    name: str
    quantity: Decimal
    unit: str
    tolerance: Tolerance
    scaled: bool = True
    # Warehouse status a lot must have to be dispensed.
    lot_status: str = "released"


@dataclass(frozen=True)
class YieldRange:
    min: Decimal
    max: Decimal
    unit: str


@dataclass(frozen=True)
class MaterialOutput:
    material: str
    name: str
    expected_yield: YieldRange | None = None


@dataclass(frozen=True)
class Parameter:
    id: str
    name: str
    value: Decimal
    unit: str
    scaled: bool = False
    min: Decimal | None = None
    max: Decimal | None = None


@dataclass(frozen=True)
class Formula:
    inputs: tuple[MaterialInput, ...]
    outputs: tuple[MaterialOutput, ...] = ()
    parameters: tuple[Parameter, ...] = ()

    def input(self, material: str) -> MaterialInput:
        return next(i for i in self.inputs if i.material == material)

    def parameter(self, parameter_id: str) -> Parameter:
        return next(p for p in self.parameters if p.id == parameter_id)


@dataclass(frozen=True)
class Range:
    min: Decimal
    max: Decimal
    unit: str


@dataclass(frozen=True)
class EquipmentRole:
    role: str
    equipment_class: str
    description: str = ""
    # What the bound equipment must cover and resolve (resolution in the range's unit).
    range: Range | None = None
    resolution: Decimal | None = None
    # Preconditions checked when a batch binds equipment to the role.
    calibrated: bool = True
    clean: bool = True
    max_hours_since_cleaning: int | None = None


@dataclass(frozen=True, kw_only=True)
class Phase:
    """Common to all phases; `type` is the YAML `type:` and the plan step kind."""

    type: ClassVar[str]
    id: str
    name: str | None = None
    instruction: str | None = None
    equipment: str | None = None
    # Signature policy: a second person with this role verifies the step (four-eyes).
    verify_role: str | None = None
    # Who performs the phase and what their signature means (`sign:`); None: the default,
    # an operator who signs "performed".
    perform_role: str | None = None
    sign_meaning: str | None = None


@dataclass(frozen=True, kw_only=True)
class WeighPhase(Phase):
    type: ClassVar[str] = "weigh"
    material: str
    equipment: str
    # The step id of the calc phase whose result is the target (`target: {calc: ...}`).
    target_calc: str | None = None


@dataclass(frozen=True, kw_only=True)
class MixPhase(Phase):
    type: ClassVar[str] = "mix"
    equipment: str
    speed: str
    duration: str


@dataclass(frozen=True)
class Limits:
    low: Decimal
    high: Decimal
    unit: str


@dataclass(frozen=True, kw_only=True)
class CheckPhase(Phase):
    type: ClassVar[str] = "check"
    label: str
    limits: Limits
    # Exception policy for a result outside the limits: warn, hold or abort.
    on_fail: str = "warn"
    alert_limits: Limits | None = None


@dataclass(frozen=True, kw_only=True)
class EntryPhase(Phase):
    """Data entry: a typed value; `limits` are action limits, `alert_limits` alert limits."""

    type: ClassVar[str] = "entry"
    label: str
    value_type: str = "decimal"
    unit: str | None = None
    limits: Limits | None = None
    alert_limits: Limits | None = None
    on_fail: str = "warn"


@dataclass(frozen=True, kw_only=True)
class InstructionPhase(Phase):
    type: ClassVar[str] = "instruction"
    instruction: str


@dataclass(frozen=True, kw_only=True)
class TimerPhase(Phase):
    """A hold time: parameter ids of the minimum and (optional) maximum duration."""

    type: ClassVar[str] = "timer"
    min_duration: str
    max_duration: str | None = None


@dataclass(frozen=True, kw_only=True)
class PlcSetPhase(Phase):
    """Write a setpoint (a parameter id, or a number in `unit`) to a PLC tag."""

    type: ClassVar[str] = "plc_set"
    equipment: str
    tag: str
    setpoint: str | Decimal
    unit: str | None = None


@dataclass(frozen=True, kw_only=True)
class PlcReadPhase(Phase):
    type: ClassVar[str] = "plc_read"
    equipment: str
    tag: str
    unit: str
    label: str | None = None
    limits: Limits | None = None
    alert_limits: Limits | None = None
    on_fail: str = "warn"


@dataclass(frozen=True, kw_only=True)
class PickPhase(Phase):
    """Pick a lot of a formula input from the warehouse."""

    type: ClassVar[str] = "pick"
    material: str
    target_calc: str | None = None


@dataclass(frozen=True, kw_only=True)
class CalcPhase(Phase):
    type: ClassVar[str] = "calc"
    expression: str
    unit: str
    decimals: int = 2


@dataclass(frozen=True, kw_only=True)
class LabelPhase(Phase):
    type: ClassVar[str] = "label"
    # As written; placeholders {step:<ref>} are resolved to full step ids when compiled.
    template: str


@dataclass(frozen=True, kw_only=True)
class SignoffPhase(Phase):
    type: ClassVar[str] = "signoff"
    role: str
    meaning: str


PHASE_TYPES: dict[str, type[Phase]] = {
    cls.type: cls
    for cls in (
        WeighPhase, MixPhase, CheckPhase, EntryPhase, InstructionPhase, TimerPhase,
        PlcSetPhase, PlcReadPhase, PickPhase, CalcPhase, LabelPhase, SignoffPhase,
    )
}  # fmt: skip


@dataclass(frozen=True)
class Operation:
    id: str
    name: str
    phases: tuple[Phase, ...]
    description: str = ""


@dataclass(frozen=True)
class UnitProcedure:
    id: str
    name: str
    operations: tuple[Operation, ...]
    description: str = ""


@dataclass(frozen=True)
class Step:
    """A phase in execution order, with its place in the hierarchy."""

    step_id: str
    unit_procedure: UnitProcedure
    operation: Operation
    phase: Phase


@dataclass(frozen=True)
class Test:
    """A condition on the latest recorded result or value of a step (plan operators:
    passed, failed, gt, lt, ge, le)."""

    step_id: str
    op: str
    value: Decimal | None = None


@dataclass(frozen=True)
class Flow:
    """How steps run: `step`, `sequence`, `parallel` or `repeat` (until `until`, at most
    `at_most` times), each only `when` its test holds."""

    kind: str
    step_id: str | None = None
    children: tuple[Flow, ...] = ()
    when: Test | None = None
    until: Test | None = None
    at_most: int = 1
    # Run instead when `when` does not hold.
    otherwise: tuple[Flow, ...] = ()


@dataclass(frozen=True)
class Procedure:
    """`unit_procedures` (and their operations and phases) are listed in written order,
    blocks flattened; `flow` is None when everything runs one after the other."""

    unit_procedures: tuple[UnitProcedure, ...]
    flow: Flow | None = None

    def steps(self) -> Iterator[Step]:
        """Every phase once, in written order (blocks and `otherwise` lists flattened)."""
        for up in self.unit_procedures:
            for op in up.operations:
                for phase in op.phases:
                    yield Step(f"{up.id}/{op.id}/{phase.id}", up, op, phase)


@dataclass(frozen=True)
class Recipe:
    """A validated master recipe and the exact text it was read from."""

    header: Header
    formula: Formula
    equipment: tuple[EquipmentRole, ...]
    procedure: Procedure
    source: str
    source_text: str
    sha256: str
    language: int = LANGUAGE_VERSION
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def id(self) -> str:
        return self.header.id

    @property
    def version(self) -> str:
        return self.header.version

    def line_of(self, path: str) -> int | None:
        """Line where `path` (e.g. `header.batch_size`) is written, if it is."""
        return self.lines.get(path)


# -- building from a validated tree --------------------------------------------------------


def build_recipe(tree: Mapping[str, Any], text: str, source: str, sha256: str) -> Recipe:
    """Typed `Recipe` from a tree that passed `schema_check` and `semantics`."""
    formula = tree["formula"]
    return Recipe(
        header=_header(tree["header"]),
        formula=Formula(
            inputs=tuple(_input(i) for i in formula["inputs"]),
            outputs=tuple(_output(o) for o in formula.get("outputs", ())),
            parameters=tuple(_parameter(p) for p in formula.get("parameters", ())),
        ),
        equipment=tuple(_equipment(e) for e in tree["equipment"]),
        procedure=_procedure(tree["procedure"]),
        source=source,
        source_text=text,
        sha256=sha256,
        language=tree["ebr_recipe"],
        lines=_lines(tree),
    )


def _decimal(value: int | Decimal) -> Decimal:
    return Decimal(value)


def _optional(node: Mapping[str, Any], key: str) -> Decimal | None:
    return _decimal(node[key]) if key in node else None


def _equipment(e: Mapping[str, Any]) -> EquipmentRole:
    span = e.get("range")
    pre = e.get("preconditions", {})
    return EquipmentRole(
        role=e["role"],
        equipment_class=e["class"],
        description=e.get("description", ""),
        range=Range(_decimal(span["min"]), _decimal(span["max"]), span["unit"]) if span else None,
        resolution=_optional(e, "resolution"),
        calibrated=pre.get("calibrated", True),
        clean=pre.get("clean", True),
        max_hours_since_cleaning=pre.get("max_hours_since_cleaning"),
    )


def _header(h: Mapping[str, Any]) -> Header:
    size = h["batch_size"]
    return Header(
        id=h["id"],
        name=h["name"],
        version=h["version"],
        product=Product(h["product"]["code"], h["product"]["name"]),
        batch_size=BatchSize(
            _decimal(size["nominal"]), _decimal(size["min"]), _decimal(size["max"]), size["unit"]
        ),
        author=h["author"],
        description=h.get("description", ""),
        effective=date.fromisoformat(h["effective"]) if "effective" in h else None,
        expiry=date.fromisoformat(h["expiry"]) if "expiry" in h else None,
    )


def _input(i: Mapping[str, Any]) -> MaterialInput:
    t = i["tolerance"]
    tolerance = (
        Tolerance(percent=_decimal(t["percent"]))
        if "percent" in t
        else Tolerance(absolute=_decimal(t["absolute"]), unit=t["unit"])
    )
    return MaterialInput(
        material=i["material"],
        name=i["name"],
        quantity=_decimal(i["quantity"]),
        unit=i["unit"],
        tolerance=tolerance,
        scaled=i.get("scaled", True),
        lot_status=i.get("lot_status", "released"),
    )


def _output(o: Mapping[str, Any]) -> MaterialOutput:
    y = o.get("expected_yield")
    expected = YieldRange(_decimal(y["min"]), _decimal(y["max"]), y["unit"]) if y else None
    return MaterialOutput(o["material"], o["name"], expected)


def _parameter(p: Mapping[str, Any]) -> Parameter:
    return Parameter(
        p["id"], p["name"], _decimal(p["value"]), p["unit"], p.get("scaled", False),
        _optional(p, "min"), _optional(p, "max"),
    )


def _procedure(tree: Mapping[str, Any]) -> Procedure:
    ups = tuple(_unit_procedure(u) for _, u in written.elements(tree, 0, ()))
    step_ids = [f"{u.id}/{o.id}/{p.id}" for u in ups for o in u.operations for p in o.phases]
    # References between phases (computed targets) resolve to full step ids.
    ups = tuple(
        replace(u, operations=tuple(
            replace(o, phases=tuple(_resolved(p, step_ids) for p in o.phases))
            for o in u.operations
        ))
        for u in ups
    )
    flow = _flow(written.procedure_flow(tree), step_ids)
    return Procedure(ups, flow if _uses_logic(flow) else None)


def _resolved(phase: Phase, step_ids: list[str]) -> Phase:
    target = getattr(phase, "target_calc", None)
    if target is None:
        return phase
    (step_id,) = written.resolve(target, step_ids)  # validated: exactly one match
    return replace(phase, target_calc=step_id)


def _flow(node: written.Node, step_ids: list[str]) -> Flow:
    kind = "repeat" if node.kind == written.REPEAT else node.kind
    return Flow(
        kind=kind,
        step_id=node.step_id,
        children=tuple(_flow(c, step_ids) for c in node.children),
        when=_test(node.when, step_ids),
        until=_test(node.until, step_ids),
        at_most=node.at_most or 1,
        otherwise=tuple(_flow(c, step_ids) for c in node.otherwise),
    )


def _test(cond: written.Cond | None, step_ids: list[str]) -> Test | None:
    if cond is None or cond.ref is None or cond.test is None:
        return None
    (step_id,) = written.resolve(cond.ref, step_ids)  # validated: exactly one match
    if cond.test == "passed":
        return Test(step_id, "passed" if cond.value is True else "failed")
    return Test(step_id, written.COMPARISONS[cond.test], _decimal(cond.value))


def _uses_logic(flow: Flow) -> bool:
    return (
        flow.kind not in ("sequence", "step")
        or flow.when is not None
        or any(_uses_logic(c) for c in flow.children)
    )


def _unit_procedure(u: Mapping[str, Any]) -> UnitProcedure:
    return UnitProcedure(
        id=u["id"],
        name=u["name"],
        operations=tuple(_operation(o) for _, o in written.elements(u, 1, ())),
        description=u.get("description", ""),
    )


def _operation(o: Mapping[str, Any]) -> Operation:
    return Operation(
        id=o["id"],
        name=o["name"],
        phases=tuple(_phase(p) for _, p in written.elements(o, 2, ())),
        description=o.get("description", ""),
    )


def _phase(p: Mapping[str, Any]) -> Phase:
    # `when` and `otherwise` belong to the flow (Procedure.flow), not to the phase.
    skip = ("type", "when", "otherwise", "verify", "sign", "target")
    fields: dict[str, Any] = {k: v for k, v in p.items() if k not in skip}
    if "verify" in p:
        fields["verify_role"] = p["verify"]["role"]
    if "sign" in p:
        fields["perform_role"] = p["sign"]["role"]
        fields["sign_meaning"] = p["sign"].get("meaning", "performed")
    if "target" in p:
        fields["target_calc"] = p["target"]["calc"]  # resolved to a step id by _procedure
    for key in ("limits", "alert_limits"):
        if key in fields:
            limits = fields[key]
            fields[key] = Limits(
                _decimal(limits["low"]), _decimal(limits["high"]), limits["unit"]
            )
    if isinstance(fields.get("setpoint"), int):
        fields["setpoint"] = _decimal(fields["setpoint"])
    return PHASE_TYPES[p["type"]](**fields)


def _lines(tree: Any, path: RecipePath = ()) -> dict[str, int]:
    """Line of every key and list item, by formatted path."""
    lines: dict[str, int] = {}
    if isinstance(tree, LineDict):
        for key, value in tree.items():
            child = (*path, key)
            lines[format_path(child)] = tree.key_lines[key]
            lines.update(_lines(value, child))
    elif isinstance(tree, LineList):
        for index, value in enumerate(tree):
            child = (*path, index)
            lines[format_path(child)] = tree.item_lines[index]
            lines.update(_lines(value, child))
    return lines
