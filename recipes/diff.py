"""Semantic difference between two versions of a master recipe.

A text diff of two YAML files shows moved lines and reformatting as changes; a reviewer
needs to know what the *process* change is. This compares the typed recipes:

* phases, matched by phase id (by step id `unit_procedure/operation/phase` when a phase
  id is used more than once in a recipe): added, removed, moved (to another operation, or
  to another place in the order of execution) and changed (every field that differs, e.g.
  limits, material, instruction);
* formula inputs (by material), outputs (by material) and parameters (by id): added,
  removed and every changed value, unit, tolerance or scaling;
* header fields, equipment roles (by role), unit procedures and operations (by id);
* procedure logic: each parallel block, repeat (with its condition and bound) and `when`
  condition, described by the step ids it covers, added or removed.

Order in the result: header, formula, equipment, structure, phases, each in the order of
the newer recipe (removed entries in the order of the older one).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields, is_dataclass
from decimal import Decimal
from typing import Any

from recipes.model import Flow, Phase, Recipe, Test

ADDED = "added"
REMOVED = "removed"
MOVED = "moved"
CHANGED = "changed"


@dataclass(frozen=True)
class Change:
    """One semantic difference: what kind, about which element, and the values involved."""

    kind: str
    subject: str
    detail: str

    def __str__(self) -> str:
        head = f"{self.kind} {self.subject}"
        return f"{head}: {self.detail}" if self.detail else head


def diff_recipes(old: Recipe, new: Recipe) -> list[Change]:
    """Every semantic change from `old` to `new` (empty when they mean the same process)."""
    changes: list[Change] = []
    changes += _header(old, new)
    changes += _keyed(
        "input", _by(old.formula.inputs, "material"), _by(new.formula.inputs, "material")
    )
    changes += _keyed(
        "output", _by(old.formula.outputs, "material"), _by(new.formula.outputs, "material")
    )
    changes += _keyed(
        "parameter", _by(old.formula.parameters, "id"), _by(new.formula.parameters, "id")
    )
    changes += _keyed("equipment role", _by(old.equipment, "role"), _by(new.equipment, "role"))
    changes += _structure(old, new)
    changes += _logic(old, new)
    changes += _phases(old, new)
    return changes


def _text(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_dataclass(value) and not isinstance(value, type):
        parts = [f"{k}={_text(v)}" for k, v in _plain(value).items() if v is not None]
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _plain(value: Any) -> dict[str, Any]:
    """A dataclass's own fields (not nested `asdict` copies, so Decimals stay Decimals)."""
    return {f.name: getattr(value, f.name) for f in fields(value)}


def _field_changes(old: Any, new: Any, skip: Iterable[str] = ()) -> list[str]:
    before, after = _plain(old), _plain(new)
    notes = []
    for name in after:
        if name in skip or before.get(name) == after[name]:
            continue
        notes.append(f"{name} {_text(before.get(name))} -> {_text(after[name])}")
    return notes


def _by(items: Iterable[Any], key: str) -> dict[str, Any]:
    return {getattr(item, key): item for item in items}


def _keyed(what: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    for key in old:
        if key not in new:
            yield Change(REMOVED, f"{what} {key}", "")
    for key, item in new.items():
        if key not in old:
            yield Change(ADDED, f"{what} {key}", _text(item))
        else:
            notes = _field_changes(old[key], item)
            if notes:
                yield Change(CHANGED, f"{what} {key}", "; ".join(notes))


def _header(old: Recipe, new: Recipe) -> Iterator[Change]:
    notes = _field_changes(old.header, new.header)
    if old.language != new.language:
        notes.insert(0, f"ebr_recipe {old.language} -> {new.language}")
    if notes:
        yield Change(CHANGED, "header", "; ".join(notes))


def _structure(old: Recipe, new: Recipe) -> Iterator[Change]:
    old_ups = _by(old.procedure.unit_procedures, "id")
    new_ups = _by(new.procedure.unit_procedures, "id")
    for up_id, up in new_ups.items():
        if up_id in old_ups:
            notes = _field_changes(old_ups[up_id], up, skip=("operations",))
            if notes:
                yield Change(CHANGED, f"unit procedure {up_id}", "; ".join(notes))
    yield from _added_removed("unit procedure", old_ups, new_ups)
    old_ops = {f"{u.id}/{o.id}": o for u in old.procedure.unit_procedures for o in u.operations}
    new_ops = {f"{u.id}/{o.id}": o for u in new.procedure.unit_procedures for o in u.operations}
    for op_id, op in new_ops.items():
        if op_id in old_ops:
            notes = _field_changes(old_ops[op_id], op, skip=("phases",))
            if notes:
                yield Change(CHANGED, f"operation {op_id}", "; ".join(notes))
    yield from _added_removed("operation", old_ops, new_ops)


def _added_removed(what: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    for key in old:
        if key not in new:
            yield Change(REMOVED, f"{what} {key}", "")
    for key in new:
        if key not in old:
            yield Change(ADDED, f"{what} {key}", "")


@dataclass(frozen=True)
class _Placed:
    key: str
    step_id: str
    where: str  # unit_procedure/operation
    phase: Phase


def _placed(recipe: Recipe, by_step_id: bool) -> dict[str, _Placed]:
    result = {}
    for step in recipe.procedure.steps():
        key = step.step_id if by_step_id else step.phase.id
        where = f"{step.unit_procedure.id}/{step.operation.id}"
        result[key] = _Placed(key, step.step_id, where, step.phase)
    return result


def _phase_ids_unique(recipe: Recipe) -> bool:
    ids = [step.phase.id for step in recipe.procedure.steps()]
    return len(ids) == len(set(ids))


def _phases(old: Recipe, new: Recipe) -> Iterator[Change]:
    by_step_id = not (_phase_ids_unique(old) and _phase_ids_unique(new))
    before, after = _placed(old, by_step_id), _placed(new, by_step_id)
    for key, placed in before.items():
        if key not in after:
            yield Change(REMOVED, f"phase {placed.step_id}", placed.phase.type)
    common_old = [k for k in before if k in after]
    common_new = [k for k in after if k in before]
    in_order = set(_longest_common_subsequence(common_old, common_new))
    for position, (key, placed) in enumerate(after.items(), start=1):
        if key not in before:
            yield Change(ADDED, f"phase {placed.step_id}", f"{placed.phase.type}, step {position}")
            continue
        was = before[key]
        if was.where != placed.where:
            yield Change(MOVED, f"phase {placed.step_id}", f"from {was.step_id}")
        elif key not in in_order:
            old_position = list(before).index(key) + 1
            yield Change(
                MOVED, f"phase {placed.step_id}", f"from step {old_position} to step {position}"
            )
        notes = []
        if was.phase.type != placed.phase.type:
            notes.append(f"type {was.phase.type} -> {placed.phase.type}")
            notes += _type_change_fields(was.phase, placed.phase)
        else:
            notes += _field_changes(was.phase, placed.phase)
        if notes:
            yield Change(CHANGED, f"phase {placed.step_id}", "; ".join(notes))


def _type_change_fields(old: Phase, new: Phase) -> list[str]:
    before, after = asdict(old), asdict(new)
    return [
        f"{name} {_text(before.get(name))} -> {_text(getattr(new, name))}"
        for name in after
        if before.get(name) != after[name]
    ]


def _longest_common_subsequence(a: list[str], b: list[str]) -> list[str]:
    """The longest run of keys in the same relative order in both (phases that did not move)."""
    lengths = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            lengths[i][j] = (
                lengths[i + 1][j + 1] + 1
                if a[i] == b[j]
                else max(lengths[i + 1][j], lengths[i][j + 1])
            )
    result, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            result.append(a[i])
            i, j = i + 1, j + 1
        elif lengths[i + 1][j] >= lengths[i][j + 1]:
            i += 1
        else:
            j += 1
    return result


def _logic(old: Recipe, new: Recipe) -> Iterator[Change]:
    before, after = _logic_lines(old.procedure.flow), _logic_lines(new.procedure.flow)
    for line in before:
        if line not in after:
            yield Change(REMOVED, "procedure logic", line)
    for line in after:
        if line not in before:
            yield Change(ADDED, "procedure logic", line)


def _logic_lines(flow: Flow | None) -> list[str]:
    """One line per parallel block, repeat and condition, naming the steps it covers."""
    if flow is None:
        return []
    lines = []
    steps = ", ".join(_step_ids(flow))
    if flow.when is not None:
        instead = [s for other in flow.otherwise for s in _step_ids(other)]
        otherwise = f", otherwise {', '.join(instead)}" if instead else ""
        lines.append(f"{steps} only when {_test_text(flow.when)}{otherwise}")
    if flow.kind == "parallel":
        lines.append("parallel: " + " | ".join(", ".join(_step_ids(c)) for c in flow.children))
    if flow.kind == "repeat" and flow.until is not None:
        lines.append(f"repeat {steps} until {_test_text(flow.until)}, at most {flow.at_most} times")
    for child in (*flow.children, *flow.otherwise):
        lines += _logic_lines(child)
    return lines


def _step_ids(flow: Flow) -> list[str]:
    if flow.step_id:
        return [flow.step_id]
    return [s for child in flow.children for s in _step_ids(child)]


def _test_text(test: Test) -> str:
    if test.value is None:
        return f"{test.step_id} {test.op}"
    return f"{test.step_id} {test.op} {_text(test.value)}"
