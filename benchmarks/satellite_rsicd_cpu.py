"""``recipes/satellite/rsicd_cpu.yaml`` end to end on about 2,000 images in the RSICD layout: the laptop data check.

The recipe promises to check one's own RSICD / RSITMD-format caption data (RGB JPEGs or multispectral GeoTIFFs)
end to end in under 20 minutes on 2 CPU cores. This script writes such a set, runs the recipe on it in a
subprocess (a fresh interpreter, as a user runs it) and prints the run's wall time with its headline metrics.

The images are the satellite demo's synthetic Sentinel-2 chips (12 bands, 64 x 64, five captions each), written
as a Karpathy caption file ``dataset_demo.json`` with the chips in ``images/`` beside it; ``--rgb`` writes each
chip's true-colour bands (B04, B03, B02) as an 8-bit JPEG instead, as RSICD ships its images. The Karpathy format
carries captions only, so the attribute AUCs are scored against silver labels structured from the held-out
captions (``zeroshot.label_source``), as they would be on a user's own RSICD data.

    python benchmarks/satellite_rsicd_cpu.py [--n 2000] [--rgb] [--out runs/satellite-rsicd-cpu-bench]
        [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "satellite" / "rsicd_cpu.yaml"
KARPATHY_SPLIT = {"train": "train", "valid": "val", "test": "test"}
TRUE_COLOUR = ("B04", "B03", "B02")
REPORTED = (
    "zeroshot.label_source",
    "zeroshot.auc_mean",
    "linear_probe.auc_mean",
    "retrieval.mean_recall",
    "retrieval.chance.mean_recall",
    "evaluate.n",
    "wall_seconds",
    "memory.peak_rss_mb_through_training",
)


def _true_colour_jpeg(chip: Path, out: Path) -> None:
    """The chip's B04, B03, B02 as an 8-bit picture (reflectance 0-3000 stretched to 0-255, as quick looks are)."""
    import rasterio
    from PIL import Image

    with rasterio.open(chip) as src:
        names = list(src.descriptions)
        pixels = np.stack([src.read(names.index(b) + 1) for b in TRUE_COLOUR], axis=-1).astype(np.float32)
    Image.fromarray(np.clip(pixels / 3000 * 255, 0, 255).astype(np.uint8)).save(out, quality=92)


def write_rsicd(out: Path, n: int, seed: int, rgb: bool) -> Path:
    """The demo's ``n`` chips and captions as an RSICD-layout tree under ``out``; returns ``out``."""
    from domainclip.domains.satellite.demo import write_demo

    demo = out / "demo"
    manifest = pd.read_csv(write_demo(demo, n=n, seed=seed, eurosat_per_class=0))
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    entries = []
    for imgid, (chip_id, rows) in enumerate(manifest.groupby("id", sort=False)):
        chip = demo / rows["image"].iloc[0]
        name = f"{chip_id}.jpg" if rgb else chip.name
        if rgb:
            _true_colour_jpeg(chip, images / name)
        else:
            shutil.copyfile(chip, images / name)
        sentences = [
            {"raw": c, "tokens": c.rstrip(" .").split(), "imgid": imgid, "sentid": 5 * imgid + k}
            for k, c in enumerate(rows["caption"])
        ]
        entries.append(
            {
                "filename": name,
                "imgid": imgid,
                "split": KARPATHY_SPLIT[rows["split"].iloc[0]],
                "sentences": sentences,
                "sentids": [s["sentid"] for s in sentences],
            }
        )
    (out / "dataset_demo.json").write_text(json.dumps({"images": entries, "dataset": "demo"}), encoding="utf-8")
    shutil.rmtree(demo)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rgb", action="store_true", help="RGB JPEGs instead of 12-band GeoTIFFs")
    parser.add_argument("--out", type=Path, default=Path("runs/satellite-rsicd-cpu-bench"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    started = time.time()
    root = write_rsicd(args.out / "data", args.n, args.seed, args.rgb)
    print(f"wrote {args.n} images in the RSICD layout under {root} in {time.time() - started:.0f} s")
    run = args.out / "run"
    overrides = [f"data.root={root}", f"data.cache_dir={args.out / 'cache'}", f"output.dir={run}", *args.overrides]
    cmd = [sys.executable, "-m", "domainclip.cli.main", "run", str(RECIPE)]
    cmd += [a for o in overrides for a in ("--set", o)]
    print("$", " ".join(cmd), flush=True)
    started = time.time()
    if (code := subprocess.run(cmd, check=False).returncode) != 0:
        return code
    elapsed = time.time() - started
    metrics = json.loads((run / "metrics.json").read_text())
    print()
    print(f"| {'RGB JPEG' if args.rgb else '12-band GeoTIFF'}, {args.n} images | value |")
    print("|---|---|")
    print(f"| command wall time, s | {elapsed:.0f} |")
    for key in REPORTED:
        value = metrics.get(key, float("nan"))
        print(f"| `{key}` | {value:.3f} |" if isinstance(value, float) else f"| `{key}` | {value} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
