"""docs/cli.md is generated from the command line and must match it."""

from pathlib import Path

from domainclip.cli.reference import render

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_cli_reference_is_up_to_date() -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert page == render(), "docs/cli.md is stale: run python -m domainclip.cli.reference > docs/cli.md"


def test_every_command_and_subcommand_has_a_section() -> None:
    page = render()
    for command in ("run", "report", "zeroshot", "wsi extract-features", "wsi heatmap", "demo-data"):
        assert f"## `domainclip {command}`" in page, command
