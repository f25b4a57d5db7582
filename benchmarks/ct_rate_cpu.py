"""Wall time of ``recipes/ct/ct_rate_cpu.yaml`` on ~500 volumes in the CT-RATE layout, on this machine.

CT-RATE itself cannot be downloaded here, so the tree is written from the demo phantoms
(:mod:`domainclip.domains.ct.demo`) the way CT-RATE ships volumes: uint16 stored values
(HU + 1024, intercept -1024 in ``metadata/*_metadata.csv``), a NIfTI header without
geometry (spacing from ``XYSpacing`` / ``ZSpacing``), the demo report split into
``Findings_EN`` / ``Impressions_EN``, and the 18 label columns (cardiomegaly and pleural
effusion from the demo truth, the rest 0: the demo's other findings are not among them).

Two figures, both measured in this run:
  1. end-to-end wall time of the recipe (fresh preprocessing cache) on ``--n`` demo-sized
     volumes (96 x 80 x 96 at 4 mm);
  2. the wall time per volume of ``run``'s first pass (the image check, which decodes each file
     once and preprocesses it into the cache, on ``run``'s threads) at CT-RATE's real size
     (512 x 512 x 240 at 0.75 x 0.75 x 1.5 mm), on ``--full-size`` volumes, next to the same
     for demo-sized ones; after it no epoch decodes a file again.
It prints the estimate ``end-to-end + n * (full-size - demo-size per-volume time)``: the
recipe's time on real CT-RATE files, whose training cost is the same (64^3-class tensors).

    python benchmarks/ct_rate_cpu.py [--n 500] [--full-size 3] [--out runs/bench-ct-rate-cpu]
    python benchmarks/ct_rate_cpu.py --root /data/ct_independent [--set model.text.name=minilm ...]
    python benchmarks/ct_rate_cpu.py --root /data/ct_independent --baseline \
        benchmarks/data/ct_rate_cpu_before_issue13.yaml --ceiling 300

With ``--root`` the recipe runs on an existing CT-RATE-layout tree (e.g. the frozen independent set written by
``benchmarks/ct_independent/generate.py``) instead of one written from the demo phantoms; ``--set`` passes
recipe overrides (the levers compared in docs/benchmarks.md). Either way it ends with zero-shot and linear-probe
AUC per finding and the label source they were scored against; ``--baseline`` runs an older recipe on the same tree
and prints it beside the new one, and ``--ceiling STEPS`` adds the supervised ceiling of the recipe's image tower on
the same split (``benchmarks/ct_supervised_ceiling.py``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.ndimage import zoom

from domainclip.config.loader import load_recipe
from domainclip.data.cache import DiskCache
from domainclip.data.dataset import CachedDataset
from domainclip.data.validate import find_problems
from domainclip.domains.ct.demo import VOXEL_MM, make_study
from domainclip.domains.ct.domain import CTDomain
from domainclip.domains.ct.layouts import CT_RATE_LABELS, PARTS
from domainclip.domains.ct.preprocess import CTPreprocessor
from domainclip.records import Record

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "ct" / "ct_rate_cpu.yaml"
BEFORE = Path(__file__).resolve().parent / "data" / "ct_rate_cpu_before_issue13.yaml"
INTERCEPT = -1024.0
FROM_DEMO = {"Cardiomegaly": "cardiomegaly", "Pleural effusion": "pleural effusion"}
FULL_SHAPE, FULL_SPACING = (512, 512, 240), (0.75, 0.75, 1.5)


def _sections(report: str) -> tuple[str, str]:
    """(Findings_EN, Impressions_EN) of a demo report."""
    findings, _, impression = report.partition("IMPRESSION:")
    return findings.split("FINDINGS:")[-1].strip(), impression.strip()


def _save(path: Path, hu: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = np.clip(hu - INTERCEPT, 0, 65535).astype(np.uint16)
    nib.save(nib.Nifti1Image(stored, np.eye(4)), str(path))  # CT-RATE headers carry no geometry


def write_tree(root: Path, n: int, seed: int = 0) -> None:
    """``n`` studies, 80 % in ``train`` and 20 % in ``valid`` (CT-RATE's test part), one volume each."""
    base = root / "dataset"
    rows: dict[str, dict[str, list]] = {p.folder: {"reports": [], "metadata": [], "labels": []} for p in PARTS}
    for i in range(n):
        study = make_study(seed, i)
        part = PARTS[0] if i < int(0.8 * n) else PARTS[1]
        name = f"{part.folder}_{i + 1}_a_1"
        _save(
            base / part.folder / f"{part.folder}_{i + 1}" / f"{part.folder}_{i + 1}_a" / f"{name}.nii.gz",
            study.volumes[0].astype(np.float32),
        )
        findings, impression = _sections(study.report)
        volume = f"{name}.nii.gz"
        rows[part.folder]["reports"].append(
            {"VolumeName": volume, "Findings_EN": findings, "Impressions_EN": impression}
        )
        rows[part.folder]["metadata"].append(
            {
                "VolumeName": volume,
                "RescaleSlope": 1.0,
                "RescaleIntercept": INTERCEPT,
                "XYSpacing": str([VOXEL_MM] * 2),
                "ZSpacing": VOXEL_MM,
            }
        )
        rows[part.folder]["labels"].append(
            {
                "VolumeName": volume,
                **{
                    label: int(study.findings[FROM_DEMO[label]]) if label in FROM_DEMO else 0
                    for label in CT_RATE_LABELS
                },
            }
        )
    for part in PARTS:
        for sub, file, key in (
            ("radiology_text_reports", part.reports, "reports"),
            ("metadata", part.metadata, "metadata"),
            ("multi_abnormality_labels", part.labels, "labels"),
        ):
            (base / sub).mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows[part.folder][key]).to_csv(base / sub / file, index=False)


def per_volume_seconds(
    paths: list[Path], spacing: tuple[float, ...], preprocessor: CTPreprocessor, cache_root: Path
) -> float:
    """Wall seconds per volume of ``run``'s first pass over ``paths`` (stored as CT-RATE stores them): the
    image check that decodes each file once, preprocesses it into a fresh cache, on ``run``'s threads."""
    meta = {"rescale_slope": 1.0, "rescale_intercept": INTERCEPT, "spacing": list(spacing)}
    records = [Record(id=p.stem, patient_id=p.stem, image=p, texts=("-",), image_meta=meta) for p in paths]
    if cache_root.exists():
        shutil.rmtree(cache_root)
    dataset = CachedDataset(records, preprocessor, DiskCache(cache_root, preprocessor.config))
    start = time.perf_counter()
    problems = find_problems(records, CTDomain(), image_check=dataset.check)
    elapsed = time.perf_counter() - start
    if problems:
        raise RuntimeError(f"benchmark volumes rejected: {problems}")
    return elapsed / len(paths)


def report_timing(args: argparse.Namespace, tree: Path, end_to_end: float, metrics: dict) -> None:
    """The demo-size vs CT-RATE-size first-pass timing and the wall estimate for real CT-RATE files."""
    preprocessor = CTPreprocessor(load_recipe(RECIPE, [f"data.root={tree}"]).preprocess)
    small = sorted((tree / "dataset" / "train").glob("*/*/*.nii.gz"))[: max(args.full_size, 1)]
    t_small = per_volume_seconds(small, (VOXEL_MM,) * 3, preprocessor, args.out / "cache-small")
    full = []
    for k in range(args.full_size):
        hu = make_study(1, k).volumes[0].astype(np.float32)
        factors = [s / f for s, f in zip(FULL_SHAPE, hu.shape)]
        path = args.out / "full-size" / f"full_{k}.nii.gz"
        _save(path, zoom(hu, factors, order=1))
        full.append(path)
    t_full = per_volume_seconds(full, FULL_SPACING, preprocessor, args.out / "cache-full") if full else float("nan")

    estimate = end_to_end + args.n * (t_full - t_small)
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| volumes (train / test part) | {args.n} ({int(0.8 * args.n)} / {args.n - int(0.8 * args.n)}) |")
    print(f"| end-to-end wall, demo-sized volumes (fresh cache) | {end_to_end / 60:.1f} min |")
    print(
        "| first pass (check + preprocess into the cache) per volume, demo size "
        f"{small and 'x'.join(map(str, nib.load(small[0]).shape))} | {t_small:.3f} s |"
    )
    print(
        "| first pass (check + preprocess into the cache) per volume, CT-RATE size "
        f"{'x'.join(map(str, FULL_SHAPE))} | {t_full:.2f} s |"
    )
    print(f"| estimated wall on {args.n} real-size CT-RATE volumes | {estimate / 60:.1f} min |")
    print(f"| peak RSS through training | {metrics.get('memory.peak_rss_mb_through_training', float('nan')):.0f} MB |")


def run_recipe(recipe: Path, tree: Path, out: Path, overrides: list[str]) -> tuple[dict, float]:
    """``domainclip run recipe`` on ``tree`` with a fresh cache under ``out``: its metrics and wall seconds."""
    run_dir = out / "run"
    cmd = [
        sys.executable,
        "-m",
        "domainclip.cli.main",
        "run",
        str(recipe),
        "--set",
        f"data.root={tree}",
        "--set",
        f"data.cache_dir={out / 'cache'}",
        "--set",
        f"output.dir={run_dir}",
        *(item for override in overrides for item in ("--set", override)),
    ]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return json.loads((run_dir / "metrics.json").read_text()), time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--full-size", type=int, default=4, help="real-size volumes for the per-volume timing")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-ct-rate-cpu"))
    parser.add_argument("--root", type=Path, help="an existing CT-RATE-layout tree to run on (no tree is written)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override key=value")
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="the recipe measured (default: the shipped one)")
    parser.add_argument(
        "--baseline", type=Path, help=f"an older recipe to run on the same tree and print beside it (e.g. {BEFORE})"
    )
    parser.add_argument(
        "--ceiling", type=int, metavar="STEPS", default=0, help="also the recipe tower's supervised ceiling (steps)"
    )
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    if args.root is not None:
        tree = args.root
        args.n = len(list(tree.glob("**/*.nii.gz")))
    else:
        tree = args.out / "ct-rate"
        start = time.perf_counter()
        write_tree(tree, args.n)
        print(f"wrote {args.n} CT-RATE-layout volumes in {time.perf_counter() - start:.0f} s", flush=True)

    metrics, end_to_end = run_recipe(args.recipe, tree, args.out / "recipe", args.overrides)
    columns = {f"{args.recipe.name}": metrics}
    walls = {args.recipe.name: end_to_end}
    if args.baseline is not None:
        columns[f"{args.baseline.name} (baseline)"], walls[args.baseline.name] = run_recipe(
            args.baseline, tree, args.out / "baseline", []
        )
    if args.root is not None:  # an existing tree: its own storage, so no demo-size vs full-size timing
        print(f"\n| figure | value |\n|---|---|\n| volumes | {args.n} |")
        for name, seconds in walls.items():
            print(f"| end-to-end wall, {name} (fresh cache) | {seconds / 60:.1f} min |")
        print(
            f"| peak RSS through training | {metrics.get('memory.peak_rss_mb_through_training', float('nan')):.0f} MB |"
        )
    else:
        report_timing(args, tree, end_to_end, metrics)
    print(f"| zero-shot mean AUC (findings with both classes) | {metrics.get('zeroshot.auc_mean', float('nan')):.3f} |")
    print(f"| linear probe mean AUC | {metrics.get('linear_probe.auc_mean', float('nan')):.3f} |")
    ceiling = None
    if args.ceiling:
        from ct_supervised_ceiling import run as supervised

        ceiling_overrides = [f"data.root={tree}", f"data.cache_dir={args.out / 'recipe' / 'cache'}", *args.overrides]
        _, aucs, names = supervised(args.recipe, ceiling_overrides, args.ceiling)
        ceiling = dict(zip(names, aucs.tolist()))
    print_per_finding(columns, ceiling)
    return 0


def print_per_finding(columns: dict[str, dict], ceiling: dict[str, float] | None = None) -> None:
    """Zero-shot and linear-probe AUC of every finding the test split has both classes of, one pair of columns per
    recipe run, and the supervised ceiling of the first recipe's tower when measured."""
    first = next(iter(columns.values()))
    names = sorted(k.removeprefix("zeroshot.auc.") for k in first if k.startswith("zeroshot.auc."))
    print(f"\nlabels: zero-shot {first.get('zeroshot.label_source')}, probe {first.get('linear_probe.label_source')}")
    for name, metrics in columns.items():
        print(f"{name}: zero-shot scored by report prototypes for {metrics.get('zeroshot.fallback_findings', [])}")
    header = [f"{run} {kind}" for run in columns for kind in ("zero-shot", "probe")]
    if ceiling is not None:
        header.append("supervised ceiling")
    print("| finding | " + " | ".join(header) + " |\n" + "|---" * (len(header) + 1) + "|")
    rows = [*names, "mean"]
    for name in rows:
        cells = []
        for metrics in columns.values():
            for family in ("zeroshot", "linear_probe"):
                key = f"{family}.auc_mean" if name == "mean" else f"{family}.auc.{name}"
                cells.append(f"{metrics.get(key, float('nan')):.3f}")
        if ceiling is not None:
            value = sum(ceiling.values()) / len(ceiling) if name == "mean" else ceiling.get(name, float("nan"))
            cells.append(f"{value:.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
