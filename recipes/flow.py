"""Procedure logic as written: blocks (`parallel:`, `repeat:`) and `when:` conditions.

At every level of the procedure (the `unit_procedures` list, an `operations` list, a
`phases` list) an item is either an element of that level (a unit procedure, an operation,
a phase) or a block:

    - parallel: [item, item, ...]            # branches that run at the same time
    - repeat:                                # run the items again until `until` holds
        until: {step: blend-check, passed: true}
        at_most: 3
        phases: [item, ...]                  # the level's own list key
    - when: {step: lod, above: 1.5}          # on any element or block: run it only if ...
      otherwise: [item, ...]                 # ... else run these items (same level) instead

This module walks a loaded tree (valid or not, so it is written defensively) into a
`Node` tree that keeps where each thing is written. The semantic checks and the model
builder share it, so "what runs when" is defined in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from recipes.errors import RecipePath

# The list key of each level, from the top.
LEVELS = ("unit_procedures", "operations", "phases")
PARALLEL_KEY, REPEAT_KEY, WHEN_KEY, OTHERWISE_KEY = "parallel", "repeat", "when", "otherwise"

# Node kinds (the plan's flow kinds, plus `repeat` for the YAML's bounded loop).
STEP, SEQUENCE, PARALLEL, REPEAT = "step", "sequence", "parallel", "repeat"

# Condition tests as written -> the plan's condition operators.
COMPARISONS = {"above": "gt", "below": "lt", "at_least": "ge", "at_most": "le"}
TESTS = ("passed", *COMPARISONS)


@dataclass
class Cond:
    """A `when:` or `until:` mapping as written; `test` is None when not exactly one is given."""

    path: RecipePath
    ref: str | None
    test: str | None
    value: Any


@dataclass
class Node:
    kind: str
    path: RecipePath
    step_id: str | None = None
    children: list[Node] = field(default_factory=list)
    when: Cond | None = None
    until: Cond | None = None
    at_most: int | None = None
    # Run instead of this node when `when` does not hold.
    otherwise: list[Node] = field(default_factory=list)

    def steps(self) -> Iterator[Node]:
        """Every step node under (and including) this node, in written order (a node's
        `otherwise` items after it)."""
        yield from self.guarded_steps()
        for child in self.otherwise:
            yield from child.steps()

    def guarded_steps(self) -> Iterator[Node]:
        """The steps this node runs when its condition holds (not its `otherwise`)."""
        if self.kind == STEP:
            yield self
        for child in self.children:
            yield from child.steps()


def procedure_flow(procedure: Any) -> Node:
    """The flow of a `procedure:` mapping, as written (unknown parts are skipped)."""
    return _sequence(procedure, 0, ("procedure",), ())


def elements(container: Any, level: int, base: RecipePath) -> list[tuple[RecipePath, Any]]:
    """The elements of `container[LEVELS[level]]`, including those inside blocks, in
    written order, each with its path."""
    found: list[tuple[RecipePath, Any]] = []
    items = container.get(LEVELS[level]) if isinstance(container, Mapping) else None
    if isinstance(items, list):
        _collect(items, level, (*base, LEVELS[level]), found)
    return found


def _collect(items: list[Any], level: int, base: RecipePath, found: list[Any]) -> None:
    for index, item in enumerate(items):
        path = (*base, index)
        if not isinstance(item, Mapping):
            continue
        if PARALLEL_KEY in item and isinstance(item[PARALLEL_KEY], list):
            _collect(item[PARALLEL_KEY], level, (*path, PARALLEL_KEY), found)
        elif REPEAT_KEY in item:
            body = item[REPEAT_KEY]
            inner = body.get(LEVELS[level]) if isinstance(body, Mapping) else None
            if isinstance(inner, list):
                _collect(inner, level, (*path, REPEAT_KEY, LEVELS[level]), found)
        elif PARALLEL_KEY not in item:
            found.append((path, item))
        # Items run instead of this one when its condition does not hold: same level.
        otherwise = item.get(OTHERWISE_KEY)
        if isinstance(otherwise, list):
            _collect(otherwise, level, (*path, OTHERWISE_KEY), found)


def _sequence(container: Any, level: int, base: RecipePath, prefix: tuple[str, ...]) -> Node:
    node = Node(SEQUENCE, base)
    items = container.get(LEVELS[level]) if isinstance(container, Mapping) else None
    if isinstance(items, list):
        node.children = _items(items, level, (*base, LEVELS[level]), prefix)
    return node


def _items(items: list[Any], level: int, base: RecipePath, prefix: tuple[str, ...]) -> list[Node]:
    nodes = []
    for index, item in enumerate(items):
        node = _item(item, level, (*base, index), prefix)
        if node is not None:
            nodes.append(node)
    return nodes


def _item(item: Any, level: int, path: RecipePath, prefix: tuple[str, ...]) -> Node | None:
    node = _element(item, level, path, prefix)
    if node is not None and isinstance(item.get(OTHERWISE_KEY), list):
        node.otherwise = _items(item[OTHERWISE_KEY], level, (*path, OTHERWISE_KEY), prefix)
    return node


def _element(item: Any, level: int, path: RecipePath, prefix: tuple[str, ...]) -> Node | None:
    if not isinstance(item, Mapping):
        return None
    when = _cond(item, WHEN_KEY, path)
    if PARALLEL_KEY in item:
        branches = item[PARALLEL_KEY]
        children = (
            _items(branches, level, (*path, PARALLEL_KEY), prefix)
            if isinstance(branches, list)
            else []
        )
        return Node(PARALLEL, path, children=children, when=when)
    if REPEAT_KEY in item:
        body = item[REPEAT_KEY]
        where = (*path, REPEAT_KEY)
        inner = _sequence(body, level, where, prefix)
        at_most = body.get("at_most") if isinstance(body, Mapping) else None
        return Node(
            REPEAT,
            path,
            children=inner.children,
            when=when,
            until=_cond(body, "until", where),
            at_most=at_most if type(at_most) is int else None,
        )
    ident = item.get("id")
    name = ident if isinstance(ident, str) else "?"
    if level == len(LEVELS) - 1:
        return Node(STEP, path, step_id="/".join((*prefix, name)), when=when)
    inner = _sequence(item, level + 1, path, (*prefix, name))
    return Node(SEQUENCE, path, children=inner.children, when=when)


def _cond(node: Any, key: str, base: RecipePath) -> Cond | None:
    raw = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(raw, Mapping):
        return None
    ref = raw.get("step")
    tests = [t for t in TESTS if t in raw]
    test = tests[0] if len(tests) == 1 else None
    value = raw.get(test) if test else None
    if isinstance(value, bool) and test in COMPARISONS:
        value = None
    if test in COMPARISONS and not isinstance(value, int | Decimal):
        value = None
    return Cond((*base, key), ref if isinstance(ref, str) else None, test, value)


def resolve(ref: str, step_ids: list[str]) -> list[str]:
    """The step ids a reference may mean: `phase`, `operation/phase` or the full step id
    `unit_procedure/operation/phase`, matched from the end."""
    parts = ref.split("/")
    return [s for s in step_ids if s.split("/")[-len(parts):] == parts]
