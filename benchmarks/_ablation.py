"""What the recipe ablations share: the command line, one ``domainclip run`` per variant, a markdown table.

A variant is a row name and the ``--set`` overrides that make it; every variant runs the same recipe in its own
folder ``<out>/<variant key>`` as a subprocess (a fresh interpreter: no state leaks between variants) and is read
back from its ``metrics.json``. Imported by the ``*_ablation.py`` scripts beside it (run as files, so this folder
is on ``sys.path``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

Variants = Mapping[str, tuple[str, Sequence[str]]]  # key: (row name, overrides)


def parse_args(doc: str, variants: Variants, default_variants: Sequence[str], out: Path) -> argparse.Namespace:
    """``--out``, ``--variants`` and repeatable ``--set key=value`` (applied to every variant, before its own)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--variants", nargs="+", choices=list(variants), default=list(default_variants))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    return parser.parse_args()


def cli_command(command: str, recipe: Path, overrides: Sequence[str]) -> list[str]:
    cmd = [sys.executable, "-m", "domainclip.cli.main", command, str(recipe)]
    return cmd + [a for o in overrides for a in ("--set", o)]


def run_command(cmd: Sequence[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def run_variants(
    recipe: Path, variants: Variants, keys: Sequence[str], out: Path, overrides: Sequence[str]
) -> list[tuple[str, dict[str, Any]]]:
    """Run ``recipe`` once per variant key (a fresh ``<out>/<key>`` each time); (row name, metrics) in key order."""
    rows = []
    for key in keys:
        name, extra = variants[key]
        run_dir = out / key
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_command(cli_command("run", recipe, [f"output.dir={run_dir}", *overrides, *extra]))
        rows.append((name, json.loads((run_dir / "metrics.json").read_text())))
    return rows


def number(metrics: Mapping[str, Any], key: str, digits: int = 3) -> str:
    """``metrics[key]`` with ``digits`` decimals; ``nan`` when the run has no such key."""
    return f"{metrics.get(key, float('nan')):.{digits}f}"


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def run_on_shared_cache(
    recipe: Path, variants: Variants, keys: Sequence[str], out: Path, overrides: Sequence[str]
) -> list[tuple[str, dict[str, Any]]]:
    """:func:`run_variants` with one ``data.cache_dir`` for all (``<out>/cache``; a ``--set data.cache_dir`` wins),
    the demo data written once before the first variant (``domainclip validate-data``), so no variant's wall time
    includes writing it and the later ones reuse what the first cached."""
    shared = [f"data.cache_dir={out / 'cache'}", *overrides]
    run_command(cli_command("validate-data", recipe, shared))
    return run_variants(recipe, variants, keys, out, shared)
