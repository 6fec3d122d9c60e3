"""Synthetic master recipes of any length, written in the recipe language itself."""

from __future__ import annotations


def instruction_recipe(phases: int, recipe_id: str = "BENCH", version: str = "1.0.0") -> str:
    """A valid recipe: one weighing (a formula needs an input), then `phases` operator
    instructions, ten to an operation and ten operations to a unit procedure."""
    lines = [
        "ebr_recipe: 1",
        "header:",
        f"  id: {recipe_id}",
        f"  name: Benchmark recipe with {phases} phases",
        f"  version: {version}",
        "  product: {code: BENCH-P, name: Benchmark product}",
        "  batch_size: {nominal: 1, min: 1, max: 1, unit: kg}",
        "  author: Bench Author",
        "formula:",
        "  inputs:",
        "    - {material: RM-X, name: Excipient, quantity: 100, unit: g, tolerance: {percent: 1}}",
        "  outputs: []",
        "  parameters: []",
        "equipment:",
        "  - {role: scale, class: scale}",
        "procedure:",
        "  unit_procedures:",
        "    - id: dispense",
        "      name: Dispense",
        "      operations:",
        "        - id: weigh",
        "          name: Weigh",
        "          phases:",
        "            - {id: weigh-x, type: weigh, material: RM-X, equipment: scale}",
    ]
    per_op = 10
    for u in range((phases + per_op * 10 - 1) // (per_op * 10)):
        lines += [f"    - id: up{u}", f"      name: Unit {u}", "      operations:"]
        for o in range(10):
            start = (u * 10 + o) * per_op
            if start >= phases:
                break
            lines += [f"        - id: op{o}", f"          name: Operation {o}", "          phases:"]
            for p in range(start, min(start + per_op, phases)):
                lines.append(
                    f"            - {{id: p{p}, type: instruction, "
                    f"instruction: Confirm checkpoint {p}.}}"
                )
    return "\n".join(lines) + "\n"
