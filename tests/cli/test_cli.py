"""The CLI: every subcommand has --help with an example; user errors exit non-zero without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domainclip.cli.main import app

SUBCOMMANDS = [
    "run",
    "demo-data",
    "embed",
    "zeroshot",
    "evaluate",
    "validate-data",
    "recipes",
    "retrieve",
    "survival",
    "extract-findings",
]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_with_example(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and "domainclip" in result.output


def test_recipes_lists_quickstart() -> None:
    result = CliRunner().invoke(app, ["recipes"])
    assert result.exit_code == 0
    assert "recipes/ct/quickstart.yaml" in result.output


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "domainclip.cli.main", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_bad_recipe_exits_2_with_one_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("domain: ct\nstages: {align: {stepz: 3}}\n")
    result = run_cli("run", str(bad))
    assert result.returncode == 2
    assert "stages.align.stepz: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_override_exits_2(tmp_path: Path) -> None:
    result = run_cli(
        "validate-data", str(Path(__file__).parents[2] / "recipes/ct/quickstart.yaml"), "--set", "preprocess.size=abc"
    )
    assert result.returncode == 2
    assert "preprocess.size" in result.stderr and "Traceback" not in result.stderr
