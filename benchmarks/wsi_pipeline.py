"""WSI input pipeline, side by side in one run on the same synthetic slides (JPEG Aperio SVS written here).

(1) Tile reading, tiles/s over the same tissue tiles of one slide scanned at 0.25 um/px (40x):
    - a plain OpenSlide ``read_region`` loop and a plain tiffslide loop at level 0 (``--tile`` px tiles);
    - the same two loops at a resized target mpp (``--mpp``): read at level 0 then resized with OpenCV (what a
      loop that ignores the pyramid does), and ours (``SlideTiles``: the best level, then resized), single
      process, handles opened once;
(2) seconds per slide from file to tile coordinates (open, mpp, tissue at 8 um/px, the grid; CLAM's step);
(3) peak RSS of a fresh process that tiles a slide and reads its tiles, for slides of three sizes (flat in
    slide size: no slide is ever read whole);
(4) CPU tile-feature extraction, tiles/s at batch 64: the quickstart's tile ViT at 32 px and timm's ViT-S/16
    at 224 px (random weights: the cost, not the features);
(5) ABMIL forward + backward on one 10,000 x 768 bag (seconds, median of ``--repeats``).

    python benchmarks/wsi_pipeline.py [--tiles 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from domainclip.domains.wsi.config import WSIPreprocessConfig
from domainclip.domains.wsi.slide_writer import write_slide
from domainclip.domains.wsi.tiler import SlideTiler
from domainclip.domains.wsi.tiles import SlideGrid, SlideTiles
from domainclip.domains.wsi.tiling import read_tile

RSS_SIDES = (8192, 16384, 32768)


class PaintedSlide:
    """H&E-like texture over an ellipse of tissue on white glass, computed per region (no whole slide in memory)."""

    def __init__(self, side: int) -> None:
        self.side = side

    def __call__(self, x: int, y: int, w: int, h: int, downsample: int) -> np.ndarray:
        xs = (x + np.arange(w)) * downsample
        ys = (y + np.arange(h))[:, None] * downsample
        phase = np.sin(xs / 23.0) * np.cos(ys / 31.0) + 0.5 * np.sin((xs + ys) / 7.0)
        pink, purple = np.array([230.0, 150.0, 190.0]), np.array([120.0, 60.0, 160.0])
        tissue = ((xs / self.side - 0.5) ** 2 + (ys / self.side - 0.5) ** 2) < 0.16
        rgb = pink + (purple - pink) * (0.5 + 0.5 * phase)[..., None]
        return np.where(tissue[..., None], rgb, 255.0).astype(np.uint8)


def write_painted(path: Path, side: int, mpp: float) -> Path:
    source = PaintedSlide(side)
    return write_slide(path, source, mpp=mpp, size=(side, side), downsamples=(4, 16, 64), magnification=10 / mpp)


def timed(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reading_rows(slide_path: Path, tiles: int, tile: int, mpp: float, repeats: int) -> list[tuple[str, float]]:
    import cv2
    import openslide
    import tiffslide

    cfg = WSIPreprocessConfig(mpp=mpp, tile_size=tile, min_tissue=0.5)
    grid, _ = SlideTiler(cfg).tiling(slide_path)
    coords = grid.coords[:: max(1, len(grid.coords) // tiles)][:tiles]
    backends = {"openslide": openslide.OpenSlide(str(slide_path)), "tiffslide": tiffslide.TiffSlide(str(slide_path))}

    def plain(slide, size: int, resize: bool) -> None:
        for x, y in coords:
            region = np.asarray(slide.read_region((int(x), int(y)), 0, (size, size)))[..., :3]
            if resize:
                cv2.resize(region, (tile, tile), interpolation=cv2.INTER_AREA)

    rows = []
    for name, slide in backends.items():
        seconds = timed(lambda s=slide: plain(s, tile, False), repeats)
        rows.append((f"plain {name} read_region, level 0, {tile} px", len(coords) / seconds))
    for name, slide in backends.items():
        seconds = timed(lambda s=slide: plain(s, grid.patch_size_level0, True), repeats)
        rows.append((f"plain {name}, level 0 + resize to {mpp} um/px", len(coords) / seconds))
    ours = SlideTiles([SlideGrid(0, slide_path, dataclasses.replace(grid, coords=coords))], *cfg.normalize)
    ours[0]  # opens the handle, as a worker does once
    handle, tiles = ours._handle(0), ours.slides[0].grid
    seconds = timed(lambda: [read_tile(handle, tiles, i) for i in range(len(coords))], repeats)
    rows.append((f"domainclip read_tile (level {grid.level} + resize), uint8 RGB", len(coords) / seconds))
    seconds = timed(lambda: [ours[i] for i in range(len(ours))], repeats)
    rows.append(("domainclip SlideTiles item (read_tile + normalised float)", len(coords) / seconds))
    return rows


def coords_seconds(slides: list[Path], repeats: int) -> float:
    tiler = SlideTiler(WSIPreprocessConfig(mpp=0.5, tile_size=256))
    return statistics.median(timed(lambda p=p: tiler(p), repeats) for p in slides)


RSS_CHILD = """
import json, sys
from pathlib import Path
from domainclip.domains.wsi.config import WSIPreprocessConfig
from domainclip.domains.wsi.tiler import SlideTiler
from domainclip.domains.wsi.tiles import SlideGrid, SlideTiles
import openslide, tiffslide, cv2
def hwm_mb():
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
imported = hwm_mb()
Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak (VmHWM) restarts at the current RSS
cfg = WSIPreprocessConfig(mpp=0.5, tile_size=256, max_tiles=int(sys.argv[2]))
grid, _ = SlideTiler(cfg).tiling(Path(sys.argv[1]))
tiles = SlideTiles([SlideGrid(0, Path(sys.argv[1]), grid)], *cfg.normalize)
for i in range(len(tiles)):
    tiles[i]
print(json.dumps({"tiles": len(tiles), "rss_mb": hwm_mb(), "imported_mb": imported}))
"""


def rss_rows(folder: Path, max_tiles: int) -> list[tuple[str, dict]]:
    rows = []
    for side in RSS_SIDES:
        path = write_painted(folder / f"rss_{side}.svs", side, 0.25)
        out = subprocess.run(
            [sys.executable, "-c", RSS_CHILD, str(path), str(max_tiles)], capture_output=True, text=True, check=True
        )
        rows.append((f"{side} x {side} px slide ({path.stat().st_size / 2**20:.0f} MB file)", json.loads(out.stdout)))
    return rows


def extraction_rows(repeats: int) -> list[tuple[str, float]]:
    import timm

    from domainclip.models.vit import ViTEncoder

    torch.manual_seed(0)
    towers = {
        "quickstart tile ViT (96 wide, depth 3), 32 px": (
            ViTEncoder(3, (32, 32), (8, 8), hidden_size=96, depth=3, heads=3),
            32,
        ),
        "timm ViT-S/16, 224 px": (timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0), 224),
    }
    rows = []
    for name, (tower, side) in towers.items():
        batch = torch.randn(64, 3, side, side)
        with torch.no_grad():
            tower.eval()(batch)  # warm-up
            seconds = timed(lambda t=tower, b=batch: t(b), repeats)
        rows.append((name, 64 / seconds))
    return rows


def abmil_seconds(repeats: int) -> float:
    from domainclip.models.mil import GatedAttentionMIL

    torch.manual_seed(0)
    tower = GatedAttentionMIL(768, hidden_size=256)
    bag = torch.randn(1, 768, 10_000)

    def step() -> None:
        tower.zero_grad()
        tower(bag).square().sum().backward()

    step()
    return timed(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, default=2000, help="tiles per reading loop")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--mpp", type=float, default=0.5, help="target mpp of the resized loops")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rss-tiles", type=int, default=2000, help="tiles read per slide in the RSS check")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"torch threads {torch.get_num_threads()}; medians of {args.repeats} repeats")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        slide = write_painted(folder / "40x.svs", 12288, 0.25)
        print(f"\n(1) tile reading on a 12288 x 12288 px JPEG SVS at 0.25 um/px, {args.tiles} tissue tiles")
        for name, rate in reading_rows(slide, args.tiles, args.tile, args.mpp, args.repeats):
            print(f"  {name:<62} {rate:8.0f} tiles/s")
        slides = [
            write_painted(folder / f"c{k}.svs", side, mpp) for k, (side, mpp) in enumerate([(8192, 0.25), (4096, 0.5)])
        ]
        seconds = coords_seconds(slides, args.repeats)
        print(f"\n(2) file -> tile coordinates (0.5 um/px, 256 px; tissue at 8 um/px): {seconds:.2f} s per slide")
        print(
            f"\n(3) peak RSS of a process that tiles one slide (0.25 um/px) and reads up to {args.rss_tiles} tiles of "
            "256 px at 0.5 um/px; 'imports' peak': its peak before it opens the slide, after which the peak is reset"
        )
        for name, row in rss_rows(folder, args.rss_tiles):
            print(
                f"  {name:<40} peak {row['rss_mb']:5.0f} MB while reading {row['tiles']:4d} tiles "
                f"(imports' peak {row['imported_mb']:.0f} MB)"
            )
    print("\n(4) CPU tile-feature extraction, batch 64")
    for name, rate in extraction_rows(args.repeats):
        print(f"  {name:<50} {rate:8.1f} tiles/s")
    print(
        f"\n(5) ABMIL (768 -> 256, gated) forward + backward on a 10,000 x 768 bag: {abmil_seconds(args.repeats):.3f} s"
    )
    print(f"\npeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
