"""Domain errors for recipes: every problem says what is wrong, where, and how to fix it.

A `Problem` names the file, the 1-based line and column (when known) and the path inside
the recipe (`procedure.unit_procedures[1].operations[0].phases[2].limits`), so an author
(or an editor that reads `file:line:column:` like a compiler's output) can go straight
to it. A `RecipeError` carries every problem found, not just the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PathPart = str | int
RecipePath = tuple[PathPart, ...]


def format_path(path: Sequence[PathPart]) -> str:
    """`("procedure", "unit_procedures", 1, "id")` -> `procedure.unit_procedures[1].id`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe, located as precisely as possible."""

    source: str
    line: int | None
    path: str
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        if self.line is not None and self.column is not None:
            where += f":{self.column}"
        if self.path:
            return f"{where}: {self.path}: {self.message}"
        return f"{where}: {self.message}"


class RecipeError(Exception):
    """A recipe could not be loaded, validated or compiled; `problems` lists every reason."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(
            dict.fromkeys(problems),
            key=lambda p: (p.line is not None, p.line or 0, p.column or 0),
        )
        if not self.problems:
            raise ValueError("RecipeError needs at least one problem")
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(
        cls,
        source: str,
        message: str,
        line: int | None = None,
        path: str = "",
        column: int | None = None,
    ) -> RecipeError:
        return cls([Problem(source, line, path, message, column)])


class RecipeFileError(RecipeError):
    """The recipe file itself could not be read (missing, a directory, no permission)."""
