"""`recipes/schema.json` is a complete, closed JSON Schema draft-07 reference for authors,
so editors with the YAML language server complete and check recipes as they are typed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

from recipes.schema_check import recipe_schema
from recipes.yaml_safe import load_yaml


def subschemas(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from subschemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from subschemas(value, f"{where}/{index}")


def test_is_a_valid_draft_07_schema() -> None:
    schema = recipe_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    Draft7Validator.check_schema(schema)


def test_every_object_is_closed() -> None:
    objects = [(w, s) for w, s in subschemas(recipe_schema()) if s.get("type") == "object"]
    assert len(objects) >= 15
    open_objects = [w for w, s in objects if s.get("additionalProperties") is not False]
    assert open_objects == []


def test_every_property_is_described() -> None:
    undescribed = [
        f"{where}/{name}"
        for where, schema in subschemas(recipe_schema())
        if not where.endswith("/if")  # conditions select a phase type, they define nothing
        and isinstance(schema.get("properties"), dict)
        for name, prop in schema["properties"].items()
        if not (isinstance(prop, dict) and prop.get("description"))
    ]
    assert undescribed == []


def test_example_is_valid_for_plain_jsonschema(example_text: str) -> None:
    errors = list(Draft7Validator(recipe_schema()).iter_errors(load_yaml(example_text)))
    assert errors == []


def test_ships_as_package_data() -> None:
    files = resources.files("recipes")
    assert files.joinpath("schema.json").is_file()
    assert files.joinpath("examples", "vitamin-c-blend.yaml").is_file()
    assert files.joinpath("__init__.py").read_text(encoding="utf-8") == ""


SCHEMA_COMMENT = "# yaml-language-server: $schema="


def test_every_example_names_the_schema_on_its_first_line() -> None:
    examples = sorted(Path(str(resources.files("recipes").joinpath("examples"))).glob("*.yaml"))
    assert examples
    for example in examples:
        first = example.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith(SCHEMA_COMMENT), f"{example.name}: {first!r}"
        target = (example.parent / first.removeprefix(SCHEMA_COMMENT)).resolve()
        assert json.loads(target.read_text(encoding="utf-8")) == recipe_schema()
