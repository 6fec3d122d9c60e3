"""`validate_paths` (behind `ebr recipe validate`), file reading, and the error types."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from recipes.errors import Problem, RecipeError, RecipeFileError, format_path
from recipes.validate import load_recipe_file
from recipes.validate_cli import validate_paths


@pytest.fixture
def broken(tmp_path: Path, example_text: str) -> Path:
    path = tmp_path / "broken.yaml"
    text = example_text.replace("version: 1.0.0", "version: 1.0").replace("unit: rpm", "unit: rmp")
    path.write_text(text, encoding="utf-8")
    return path


class TestValidatePaths:
    def test_valid_file(self, example_path: Path) -> None:
        code, lines = validate_paths([example_path])
        digest = hashlib.sha256(example_path.read_bytes()).hexdigest()
        assert code == 0
        assert lines == [f"OK {example_path} (VC-BLEND 1.0.0, 6 steps, sha256 {digest})"]

    def test_invalid_file_lists_every_problem(self, broken: Path) -> None:
        code, lines = validate_paths([broken])
        assert code == 1
        assert len(lines) == 2
        text = broken.read_text(encoding="utf-8").splitlines()
        version = text.index(
            "  version: 1.0                    # semantic version: MAJOR.MINOR.PATCH"
        )
        speed = next(n for n, line in enumerate(text) if "unit: rmp" in line)
        speed_column = text[speed].index("unit: rmp") + 1
        assert lines[0].startswith(f"{broken}:{version + 1}:3: header.version: expected text")
        assert lines[1].startswith(
            f"{broken}:{speed + 1}:{speed_column}: formula.parameters[0].unit: unknown unit 'rmp'"
        )

    def test_missing_file(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope.yaml"
        assert validate_paths([missing]) == (2, [f"{missing}: file not found; check the path"])

    def test_directory(self, tmp_path: Path) -> None:
        code, lines = validate_paths([tmp_path])
        assert code == 2 and lines == [f"{tmp_path}: is a directory; give a recipe .yaml file"]

    def test_no_files(self) -> None:
        code, lines = validate_paths([])
        assert code == 2 and "usage: ebr recipe validate FILE..." in lines[0]

    def test_several_files_worst_code_wins(
        self, example_path: Path, broken: Path, tmp_path: Path
    ) -> None:
        code, lines = validate_paths([example_path, broken])
        assert code == 1 and lines[0].startswith("OK ") and len(lines) == 3
        code, _ = validate_paths([broken, tmp_path / "missing.yaml", example_path])
        assert code == 2


class TestReadingFiles:
    def test_bad_encoding_names_the_line(self, tmp_path: Path) -> None:
        path = tmp_path / "latin1.yaml"
        path.write_bytes("ebr_recipe: 1\nheader:\n  name: Acide ascorbique é\n".encode("latin-1"))
        code, lines = validate_paths([path])
        assert code == 1
        assert lines == [
            f"{path}:3: the file is not UTF-8 text (byte 0xe9 at offset 47); save it as UTF-8"
        ]

    def test_crlf_and_bom_hash_the_exact_bytes(self, tmp_path: Path, example_text: str) -> None:
        path = tmp_path / "windows.yaml"
        data = b"\xef\xbb\xbf" + example_text.replace("\n", "\r\n").encode("utf-8")
        path.write_bytes(data)
        recipe = load_recipe_file(path)
        assert recipe.sha256 == hashlib.sha256(data).hexdigest()
        assert recipe.source_text.encode("utf-8") == data

    def test_oversize_file(self, tmp_path: Path) -> None:
        path = tmp_path / "big.yaml"
        path.write_bytes(b"#" * (1024 * 1024 + 1))
        with pytest.raises(RecipeError) as info:
            load_recipe_file(path)
        assert "1 MiB" in info.value.problems[0].message

    def test_missing_file_is_a_file_error(self, tmp_path: Path) -> None:
        with pytest.raises(RecipeFileError):
            load_recipe_file(tmp_path / "nope.yaml")


class TestProblemFormat:
    def test_full(self) -> None:
        problem = Problem("r.yaml", 12, "procedure.unit_procedures[0].id", "duplicate id")
        assert str(problem) == "r.yaml:12: procedure.unit_procedures[0].id: duplicate id"

    def test_without_line_or_path(self) -> None:
        assert str(Problem("r.yaml", None, "", "file not found")) == "r.yaml: file not found"
        assert str(Problem("r.yaml", 3, "", "syntax")) == "r.yaml:3: syntax"

    def test_format_path(self) -> None:
        parts = ("procedure", "unit_procedures", 1, "operations", 0, "phases", 2, "limits")
        assert format_path(parts) == "procedure.unit_procedures[1].operations[0].phases[2].limits"
        assert format_path(()) == ""
        assert format_path((0, "a")) == "[0].a"

    def test_error_sorts_by_line_and_drops_repeats(self) -> None:
        a = Problem("r", 9, "x", "late")
        b = Problem("r", 2, "y", "early")
        c = Problem("r", None, "", "file")
        error = RecipeError([a, b, a, c])
        assert error.problems == [c, b, a]
        assert str(error) == "r: file\nr:2: y: early\nr:9: x: late"

    def test_problem_is_frozen(self) -> None:
        problem = Problem("r", 1, "", "m")
        with pytest.raises(AttributeError):
            problem.line = 2  # type: ignore[misc]
