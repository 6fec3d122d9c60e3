"""Shared fixtures: the shipped example recipe, and helpers to break it in one place."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest

from recipes.errors import Problem, RecipeError
from recipes.model import Recipe
from recipes.validate import load_recipe

SOURCE = "vc.yaml"


@pytest.fixture(scope="session")
def example_path() -> Path:
    path = Path(str(resources.files("recipes").joinpath("examples", "vitamin-c-blend.yaml")))
    assert path.is_file()
    return path


@pytest.fixture(scope="session")
def example_text(example_path: Path) -> str:
    return example_path.read_bytes().decode("utf-8")


@pytest.fixture(scope="session")
def example(example_text: str) -> Recipe:
    return load_recipe(example_text, SOURCE)


@pytest.fixture
def edit(example_text: str) -> Callable[..., str]:
    """The example with each `(old, new)` replacement applied; `old` must occur exactly once."""

    def _edit(*replacements: tuple[str, str]) -> str:
        text = example_text
        for old, new in replacements:
            assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
            text = text.replace(old, new)
        return text

    return _edit


@pytest.fixture
def problems_in() -> Callable[[str], list[Problem]]:
    """The problems `load_recipe` reports for a text (it must fail)."""

    def _problems(text: str) -> list[Problem]:
        with pytest.raises(RecipeError) as info:
            load_recipe(text, SOURCE)
        assert all(p.source == SOURCE for p in info.value.problems)
        return info.value.problems

    return _problems


@pytest.fixture
def line_with() -> Callable[[str, str], int]:
    """1-based number of the only line of `text` containing `needle`."""

    def _line(text: str, needle: str) -> int:
        lines = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
        assert len(lines) == 1, f"{needle!r} is on lines {lines}"
        return lines[0]

    return _line


@pytest.fixture
def only_problem(problems_in: Callable[[str], list[Problem]]) -> Callable[[str], Problem]:
    """The single problem `load_recipe` reports for a text."""

    def _only(text: str) -> Problem:
        problems = problems_in(text)
        assert len(problems) == 1, "\n".join(map(str, problems))
        return problems[0]

    return _only
