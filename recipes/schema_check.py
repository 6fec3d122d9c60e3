"""Validate a loaded recipe tree against `schema.json` and explain each error to an author.

jsonschema's own messages ("'x' is not of type 'number'") name the rule, not the fix. Here
every error becomes a finding `(path, message)` that points at the offending key itself and
says what to write instead; the caller adds file and line.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator, ValidationError

from recipes.errors import RecipePath

Finding = tuple[RecipePath, str]

_TYPE_NAMES = {
    "object": "a mapping of keys to values",
    "array": "a list",
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "nothing",
}


@cache
def recipe_schema() -> dict[str, Any]:
    """The recipe JSON Schema (draft-07, what editors' YAML language servers read best),
    shipped as `recipes/schema.json`."""
    text = resources.files("recipes").joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft7Validator:
    schema = recipe_schema()
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def schema_findings(tree: Any) -> list[Finding]:
    """Every schema violation in `tree`, explained."""
    findings: list[Finding] = []
    for error in _validator().iter_errors(tree):
        findings.extend(_explain(error, tree))
    return findings


def _explain(error: ValidationError, tree: Any) -> Iterator[Finding]:
    path: RecipePath = tuple(error.absolute_path)
    kind, value, instance = error.validator, error.validator_value, error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        unknown = [key for key in instance if key not in allowed]
        for index, key in enumerate(unknown):
            # Suggestions cost a fuzzy match each; a flood of unknown keys gets them for the
            # first few only, so a hostile file is still answered at once.
            yield (*path, key), _unknown_key(key, allowed, suggest=index < _MAX_SUGGESTIONS)
    elif kind == "required":
        for key in value:
            if isinstance(instance, Mapping) and key not in instance:
                yield path, _missing_key(key, schema, instance)
    elif kind == "not" and "propertyNames" in error.absolute_schema_path:
        yield (*path, instance), _misplaced_key(instance, error, _at(tree, path))
    elif kind == "dependencies":
        # Only the list form of draft-07 'dependencies' reports here; a schema dependency
        # reports its own (nested) error, handled by the 'not' branch above.
        for trigger, needed in value.items():
            for key in needed if isinstance(needed, list) else ():
                if trigger in instance and key not in instance:
                    yield path, f"'{trigger}' needs '{key}' next to it; add {key}: ..."
    elif kind == "pattern" and instance == "" and "minLength" in schema:
        return  # 'must not be empty' says it (minLength)
    elif kind == "anyOf" and all(set(s) == {"required"} for s in value):
        keys = [k for s in value for k in s["required"]]
        yield path, "needs one of " + " or ".join(f"'{k}'" for k in keys)
    else:
        yield path, _simple_message(error, schema)


def _simple_message(error: ValidationError, schema: Mapping[str, Any]) -> str:
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "type":
        return _type_message(value, instance, schema)
    if kind == "const" and error.absolute_path and error.absolute_path[-1] == "ebr_recipe":
        return f"unknown recipe language version {instance!r}; this ebr reads 'ebr_recipe: 1'"
    if kind == "const":
        return f"must be {value!r}"
    if kind == "enum":
        return f"{instance!r} is not allowed here; use one of: {', '.join(map(str, value))}" + (
            _did_you_mean(str(instance), [str(v) for v in value])
        )
    if kind == "pattern":
        return f"'{instance}' is not written correctly; expected {_without_types(schema)}"
    if kind == "minLength":
        return "must not be empty"
    if kind == "maxLength":
        return f"is {len(instance)} characters long; shorten it to at most {value}"
    if kind == "minItems":
        return f"the list is empty; add at least {value} entr{'y' if value == 1 else 'ies'}"
    if kind in _BOUNDS:
        return f"is {_number_text(instance)}; it must be {_BOUNDS[kind]} {_number_text(value)}"
    return error.message


_BOUNDS = {
    "exclusiveMinimum": "greater than",
    "minimum": "at least",
    "exclusiveMaximum": "less than",
    "maximum": "at most",
}


def _type_message(expected: str | list[str], instance: Any, schema: Mapping[str, Any]) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
    message = f"expected {wanted}, got {_describe(instance)}"
    if "number" in names and isinstance(instance, str):
        if _SEXAGESIMAL.match(instance):
            return (
                f"{message}; YAML 1.1 would read {instance} as a base-60 number "
                f"({_sexagesimal(instance)}), so ebr refuses it: write one plain number and "
                "put the unit in 'unit' (e.g. 90 with unit: min)"
            )
        if _LEADING_ZERO.match(instance):
            plain = _LEADING_ZEROS.sub(r"\1", instance)
            return (
                f"{message}; leading zeros are not allowed (YAML 1.1 would read {instance} as "
                f"an octal number): write {plain}"
            )
        try:
            Decimal(instance.replace("_", "").strip())
        except ArithmeticError:
            return f"{message}; write a plain decimal number such as 1200 or 0.5"
        return f"{message}; write the number plainly, without quotes, exponent or '_' (e.g. 0.5)"
    if "string" in names and isinstance(instance, int | Decimal) and not isinstance(instance, bool):
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not re.search(pattern, str(instance)):
            return f"{message}; expected {_lower_first(schema)}"
        return f'{message}; put it in quotes: "{instance}"'
    if "boolean" in names and isinstance(instance, str):
        if instance.lower() in _YAML11_BOOLEANS:
            return (
                f"{message}; '{instance}' is a boolean only in YAML 1.1, so ebr does not guess: "
                "write true or false"
            )
        return f"{message}; write true or false"
    return message


# YAML 1.1 spellings that a YAML 1.1 reader turns into numbers or booleans; the recipe
# loader keeps them as text, and these patterns let the message say why it is refused.
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?\Z")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+(?:\.[0-9]*)?\Z")
_LEADING_ZEROS = re.compile(r"^([-+]?)0+(?=[0-9])")
_YAML11_BOOLEANS = frozenset({"y", "yes", "n", "no", "on", "off"})


def _sexagesimal(text: str) -> str:
    sign = -1 if text.startswith("-") else 1
    total = Decimal(0)
    for part in text.lstrip("-+").replace("_", "").split(":"):
        total = total * 60 + Decimal(part)
    return format(sign * total, "f")


def _describe(instance: Any) -> str:
    if isinstance(instance, bool):
        return "true" if instance else "false"
    if instance is None:
        return "an empty value"
    if isinstance(instance, int | Decimal):
        return f"the number {instance}"
    if isinstance(instance, str):
        return f"the text '{instance}'"
    if isinstance(instance, Mapping):
        return "a mapping"
    return "a list"


def _number_text(value: Any) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


_MAX_SUGGESTIONS = 50


def _unknown_key(key: str, allowed: list[str], suggest: bool = True) -> str:
    hint = _did_you_mean(key, allowed) if suggest else ""
    return f"unknown key '{key}'{hint}; allowed here: {', '.join(allowed)}"


def _missing_key(key: str, schema: Mapping[str, Any], instance: Mapping[str, Any]) -> str:
    phase_type = instance.get("type")
    if "properties" not in schema and isinstance(phase_type, str):
        described = _phase_property_description(key)
        article = "an" if phase_type[:1] in "aeiou" else "a"
        return f"{article} {phase_type} phase needs '{key}': {described}"
    described = _lower_first(schema.get("properties", {}).get(key, {}))
    return f"missing required key '{key}'" + (f" ({described})" if described else "")


def _misplaced_key(key: str, error: ValidationError, parent: Any) -> str:
    schema_path = list(error.absolute_schema_path)
    if "dependencies" in schema_path:
        other = schema_path[schema_path.index("dependencies") + 1]
        return f"'{key}' cannot be combined with '{other}'; keep one of them"
    phase_type = parent.get("type") if isinstance(parent, Mapping) else None
    if isinstance(phase_type, str):
        return f"'{key}' does not apply to a {phase_type} phase; remove it"
    return f"'{key}' is not allowed here; remove it"


def _phase_property_description(key: str) -> str:
    prop = recipe_schema()["definitions"]["phase"]["properties"].get(key, {})
    return _without_types(prop)


def _without_types(schema: Mapping[str, Any]) -> str:
    text = _lower_first(schema)
    # "weigh, pick: code of ..." names the phase types the key applies to; drop that part.
    head, sep, rest = text.partition(": ")
    types = set(prop_types()) if sep else set()
    return rest if sep and all(t.strip() in types for t in head.split(",")) else text


def prop_types() -> list[str]:
    """The phase types of the recipe language, from the schema."""
    return list(recipe_schema()["definitions"]["phase"]["properties"]["type"]["enum"])


def _lower_first(schema: Mapping[str, Any]) -> str:
    """The first sentence of a schema description, to continue a message with."""
    text = _SENTENCE_END.split(str(schema.get("description", "")), maxsplit=1)[0].rstrip(".")
    return text[:1].lower() + text[1:]


_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z])")


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _at(tree: Any, path: RecipePath) -> Any:
    node = tree
    for part in path:
        node = node[part]
    return node
