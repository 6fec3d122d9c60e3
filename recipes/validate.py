"""Load a master recipe: parse the YAML safely, check it against the schema and the
semantic rules, and build the typed `Recipe`. Every problem found is reported at once.

    recipe = load_recipe_file(Path("recipes/examples/vitamin-c-blend.yaml"))
    recipe = load_recipe(text, source="vitamin-c-blend.yaml")

Both raise `RecipeError`; its `problems` say what is wrong, at which line and path, and
what to do. `load_recipe_file` raises `RecipeFileError` (a `RecipeError`) when the file
cannot be read at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from recipes.errors import Problem, RecipeError, RecipeFileError, format_path
from recipes.model import LANGUAGE_VERSION, Recipe, build_recipe
from recipes.schema_check import Finding, schema_findings
from recipes.semantics import semantic_findings
from recipes.yaml_safe import MAX_BYTES, load_yaml, position_of


def load_recipe(text: str, source: str = "<recipe>") -> Recipe:
    """Parse, schema-check and semantically check `text`; raise `RecipeError` with all problems.

    `source` names the text in messages (usually the file path). The returned recipe keeps
    `source_text` and its `sha256`: the SHA-256 of the exact UTF-8 bytes of `text`.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        raise RecipeError.single(
            source, "the text contains an invalid character (a lone surrogate); retype it", line
        ) from None
    tree = load_yaml(text, source)
    _check_language(tree, source)
    findings = schema_findings(tree)
    findings += semantic_findings(tree)
    if findings:
        raise RecipeError(_problems(findings, tree, source))
    return build_recipe(tree, text, source, hashlib.sha256(data).hexdigest())


def load_recipe_file(path: Path) -> Recipe:
    """Read `path` as UTF-8 (exact bytes: the hash is the file's) and `load_recipe` it."""
    source = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise RecipeFileError.single(source, "file not found; check the path") from None
    except IsADirectoryError:
        raise RecipeFileError.single(source, "is a directory; give a recipe .yaml file") from None
    except OSError as exc:
        raise RecipeFileError.single(source, f"cannot read the file: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise RecipeError.single(
            source,
            f"the file is larger than {MAX_BYTES} bytes (1 MiB), the limit for a recipe",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RecipeError.single(
            source,
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8",
            line,
        ) from None
    return load_recipe(text, source)


def _check_language(tree: Any, source: str) -> None:
    """A file in another language version is reported alone: nothing else would make sense."""
    if not isinstance(tree, Mapping) or "ebr_recipe" not in tree:
        return
    version = tree["ebr_recipe"]
    if type(version) is int and version == LANGUAGE_VERSION:
        return
    line, column = position_of(tree, ("ebr_recipe",))
    raise RecipeError.single(
        source,
        f"unknown recipe language version {version!r}; this ebr reads 'ebr_recipe: "
        f"{LANGUAGE_VERSION}'",
        line,
        "ebr_recipe",
        column,
    )


def _problems(findings: Iterable[Finding], tree: Any, source: str) -> list[Problem]:
    problems = []
    for path, message in findings:
        line, column = position_of(tree, path)
        problems.append(Problem(source, line, format_path(path), message, column))
    return problems
