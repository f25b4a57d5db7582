"""Find the recipes that ship with domainclip (the repository's ``recipes/`` folder)."""

from __future__ import annotations

from pathlib import Path

import yaml

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"


def list_bundled(root: Path = RECIPES_DIR) -> list[tuple[str, str]]:
    """(path relative to the repository, description) of every bundled recipe."""
    rows = []
    for path in sorted(root.rglob("*.yaml")):
        if path.name.startswith("_"):
            continue  # shared bases, not runnable on their own
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        rows.append((str(path.relative_to(root.parent)), str(data.get("description", "")).strip()))
    return rows
