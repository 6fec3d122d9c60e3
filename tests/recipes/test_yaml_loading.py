"""The strict YAML layer: duplicates, aliases, size, depth, syntax, exact numbers, lines."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from recipes.errors import Problem, RecipeError
from recipes.yaml_safe import MAX_BYTES, MAX_DEPTH, LineDict, LineList, line_of, load_yaml


def problems(text: str) -> list[Problem]:
    with pytest.raises(RecipeError) as info:
        load_yaml(text, "t.yaml")
    return info.value.problems


class TestDuplicateKeys:
    def test_names_both_lines_and_the_path(self) -> None:
        text = "header:\n  id: A\n  name: N\n  id: B\n"
        (problem,) = problems(text)
        assert (problem.line, problem.path) == (4, "header.id")
        assert "duplicate key 'id'" in problem.message
        assert "line 2" in problem.message and "line 4" in problem.message

    def test_every_duplicate_is_reported(self) -> None:
        text = "a: 1\nb:\n  - {x: 1, x: 2}\na: 3\n"
        found = problems(text)
        assert [(p.line, p.path) for p in found] == [(3, "b[0].x"), (4, "a")]

    def test_in_a_recipe_it_points_at_the_second_key(
        self,
        edit: Callable[..., str],
        only_problem: Callable[[str], Problem],
        line_with: Callable[[str, str], int],
    ) -> None:
        text = edit(("  author: Ada Author\n", "  author: Ada Author\n  author: Bob\n"))
        first, second = line_with(text, "author: Ada"), line_with(text, "author: Bob")
        problem = only_problem(text)
        assert problem.line == second and problem.path == "header.author"
        assert f"first at line {first}, again at line {second}" in problem.message


class TestAliases:
    BOMB = "\n".join(
        ["a: &a [x, x, x, x, x, x, x, x, x]"]
        + [
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]"
            for i in range(8)
        ]
    )

    def test_alias_bomb_is_rejected_fast_at_the_first_anchor(self) -> None:
        started = time.perf_counter()
        (problem,) = problems(self.BOMB)
        assert time.perf_counter() - started < 1
        assert (problem.line, problem.path) == (1, "a")
        assert "anchors (&a) are not allowed" in problem.message

    def test_an_alias_is_rejected_with_its_line(self) -> None:
        (problem,) = problems("a: 1\nb:\n  c: *x\n")
        assert (problem.line, problem.path) == (3, "b.c")
        assert "aliases (*x) are not allowed" in problem.message

    def test_merge_keys_are_plain_keys(self) -> None:
        assert load_yaml("<<: {a: 1}\n") == {"<<": {"a": 1}}


class TestLimits:
    def test_oversize_input_is_refused_before_parsing(self) -> None:
        text = "a: 1\n" + "#" * MAX_BYTES
        (problem,) = problems(text)
        assert problem.line is None
        assert "limited to 1048576 bytes (1 MiB)" in problem.message

    def test_oversize_counts_utf8_bytes(self) -> None:
        text = "# " + "é" * (MAX_BYTES // 2)  # fewer characters than bytes
        assert len(text) < MAX_BYTES
        assert "1 MiB" in problems(text)[0].message

    def test_deep_nesting_is_refused(self) -> None:
        text = "a: " + "[" * (MAX_DEPTH + 10) + "]" * (MAX_DEPTH + 10) + "\n"
        (problem,) = problems(text)
        assert problem.line == 1
        assert f"nested deeper than {MAX_DEPTH} levels" in problem.message

    def test_very_deep_nesting_does_not_recurse(self) -> None:
        text = "[" * 100_000 + "]" * 100_000
        assert "nested deeper" in problems(text)[0].message

    def test_long_numbers_are_refused(self) -> None:
        (problem,) = problems("q: 1." + "0" * 40 + "\n")
        assert (problem.line, problem.path) == (1, "q")
        assert "limited to 30" in problem.message


class TestSyntax:
    def test_tab_indentation(self) -> None:
        (problem,) = problems("header:\n  id: A\n\tname: B\n")
        assert problem.line == 3 and problem.path == ""
        assert "YAML syntax error" in problem.message and "spaces, never tabs" in problem.message

    def test_bad_indentation(self) -> None:
        (problem,) = problems("header:\n  id: A\n   name: B\n")
        assert problem.line == 3
        assert "check the indentation" in problem.message

    def test_tab_in_a_recipe(
        self,
        edit: Callable[..., str],
        only_problem: Callable[[str], Problem],
        line_with: Callable[[str, str], int],
    ) -> None:
        text = edit(("  author: Ada Author\n", "\tauthor: Ada Author\n"))
        line = line_with(text, "\tauthor")
        problem = only_problem(text)
        assert (problem.line, problem.column, problem.path) == (line, 1, "")
        assert str(problem).startswith(f"vc.yaml:{line}:1: YAML syntax error")

    def test_two_documents(self) -> None:
        (problem,) = problems("a: 1\n---\nb: 2\n")
        assert problem.line == 2 and "exactly one YAML document" in problem.message

    def test_empty_file(self) -> None:
        assert "the file is empty" in problems("# only a comment\n")[0].message

    def test_control_character(self) -> None:
        (problem,) = problems("a: 1\nb: \x07\n")
        assert problem.line == 2 and "U+0007" in problem.message

    @pytest.mark.parametrize("text", ["a: !!python/object:os.system x\n", "a: !custom 1\n"])
    def test_foreign_tags(self, text: str) -> None:
        (problem,) = problems(text)
        assert problem.path == "a" and "tag" in problem.message

    def test_non_text_keys(self) -> None:
        (problem,) = problems("? [a, b]\n: 1\n")
        assert "keys must be plain text" in problem.message


class TestScalars:
    def test_numbers_keep_their_exact_decimal_text(self) -> None:
        data = load_yaml("a: 1200.50\nb: 0.1\nc: 1200\nd: -0.000001\ne: 2.0\n")
        assert data == {
            "a": Decimal("1200.50"),
            "b": Decimal("0.1"),
            "c": 1200,
            "d": Decimal("-0.000001"),
            "e": Decimal("2.0"),
        }
        assert [str(data[k]) for k in "abc"] == ["1200.50", "0.1", "1200"]
        assert type(data["a"]) is Decimal and type(data["c"]) is int

    def test_surprising_yaml_11_values_stay_text(self) -> None:
        data = load_yaml("[yes, no, on, off, y, 1:30, 2026-01-01, 007, 1e3, .5, 1_000, +5, .nan]")
        assert data == [
            "yes", "no", "on", "off", "y", "1:30", "2026-01-01", "007", "1e3", ".5", "1_000",
            "+5", ".nan",
        ]  # fmt: skip

    def test_booleans_and_nulls(self) -> None:
        assert load_yaml("[true, False, null, ~, ]") == [True, False, None, None]
        assert load_yaml("a:\n") == {"a": None}

    def test_explicit_core_tags(self) -> None:
        assert load_yaml("[!!str 12, !!float 1.5, !!int 3]") == ["12", Decimal("1.5"), 3]
        assert problems("a: !!int 1.5\n")[0].path == "a"


class TestLines:
    TEXT = "a: 1\nb:\n  c: x\n  d:\n    - 1\n    - {e: 2}\n"

    def test_every_key_and_item_has_a_line(self) -> None:
        data = load_yaml(self.TEXT)
        assert isinstance(data, LineDict) and isinstance(data["b"]["d"], LineList)
        assert data.key_lines == {"a": 1, "b": 2}
        assert data["b"].key_lines == {"c": 3, "d": 4}
        assert data["b"]["d"].item_lines == [5, 6]

    @pytest.mark.parametrize(
        ("path", "line"),
        [
            (("a",), 1),
            (("b", "c"), 3),
            (("b", "d", 1), 6),
            (("b", "d", 1, "e"), 6),
            (("b", "missing"), 2),
            (("b", "d", 7), 4),
            ((), 1),
        ],
    )
    def test_line_of_a_path(self, path: tuple[str | int, ...], line: int) -> None:
        assert line_of(load_yaml(self.TEXT), path) == line

    def test_crlf_and_bom(self) -> None:
        data = load_yaml("\ufeffa: 1\r\nb: 2\r\n")
        assert data == {"a": 1, "b": 2} and data.key_lines == {"a": 1, "b": 2}
