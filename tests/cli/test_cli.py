"""The `ebr` command line: every command explains itself, and recipe validation
reports problems with an exit code a script can use."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from runtime.seed import EXAMPLES

runner = CliRunner()


@pytest.mark.parametrize(
    "command",
    [[], ["up"], ["worker"], ["api"], ["demo"], ["recipe", "validate"], ["report", "verify"],
     ["devices", "simulate"], ["recipe", "simulate"], ["recipe", "compile"], ["recipe", "diff"],
     ["audit", "verify"]],
)
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_validating_the_example_recipes_succeeds():
    files = [str(p) for p in sorted(EXAMPLES.glob("*.yaml"))]
    result = runner.invoke(app, ["recipe", "validate", *files])
    assert result.exit_code == 0 and result.output.startswith("OK ")


def test_validating_a_broken_recipe_names_the_line_and_fails(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("ebr_recipe: 1\nheader:\n  id: X\n  id: Y\n")
    result = runner.invoke(app, ["recipe", "validate", str(bad)])
    assert result.exit_code == 1 and "bad.yaml:4" in result.output


def test_verifying_a_file_that_is_not_a_pdf_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"not a pdf")
    root = tmp_path / "root.pem"
    root.write_text("")
    result = runner.invoke(app, ["report", "verify", str(junk), "--trust", str(root)])
    assert result.exit_code == 2 and "Traceback" not in result.output
