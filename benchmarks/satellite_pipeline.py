"""Satellite input pipeline and MAE step time: plain rasterio vs domainclip cold vs warm; one band group vs SatMAE's.

Throughput runs on the same demo GeoTIFFs (12 Sentinel-2 L2A bands, 64 x 64, uint16, deflate) with the same
preprocessing (per-band normalisation with the training split's statistics, resize to ``--size``):

(a) a plain loop: ``rasterio.open(...).read(masked=True)``, per-band ``(x - mean) / std``, nodata to NaN, one
    bilinear antialiased ``F.interpolate`` to the output size; no cache;
(b) domainclip's dataset as the stages build it (``image_dataset``: ``CachedDataset`` over ``DiskCache``) with an
    empty cache: read + preprocess + write;
(c) the same dataset again: every chip comes from the cache.

Each pass is repeated ``--repeats`` times (a fresh cache for (b)) and the median is shown; the script also reports
how far (a) and (b) differ on chips without nodata (domainclip resizes data and validity together, so chips with a
nodata border legitimately differ).

MAE step time (forward + backward + gradient clipping + AdamW step, median after warm-up) on a batch of the
preprocessed chips compares the ``vit`` tower (all bands in one patch embedding) with ``vit-groups`` with the
quickstart's three SatMAE groups. Three groups make three runs of tokens over the same grid, so equal token budgets
need the grouped model's patch to cover three times the area: ``--size`` 48 with ``vit`` patch 4 x 4 (12 x 12 = 144
tokens) and ``vit-groups`` patch 8 x 6 (3 groups x 6 x 8 = 144 tokens); a third row gives ``vit-groups`` at the same
4 x 4 patch (3 x 144 = 432 tokens). The quickstart's own width/depth/decoder and mask ratio are used.

    python benchmarks/satellite_pipeline.py [--n 200] [--repeats 3] [--steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from domainclip.config.schema import DataConfig, ImageEncoderConfig, MAEStageConfig
from domainclip.data.dataset import CachedDataset, image_dataset
from domainclip.data.nodata import split_nodata
from domainclip.domains.satellite.config import SatellitePreprocessConfig
from domainclip.domains.satellite.demo import write_demo
from domainclip.domains.satellite.domain import SatelliteDomain
from domainclip.domains.satellite.preprocess import SatellitePreprocessor
from domainclip.engine.optim import build_optimizer, resolve_groups, weight_decay_groups
from domainclip.models.builders import build_image_encoder, build_mae
from domainclip.records import Record

BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]  # the quickstart's
SATMAE_GROUPS = [["B02", "B03", "B04", "B08"], ["B05", "B06", "B07", "B8A"], ["B01", "B09", "B11", "B12"]]
# (row name, tower type, channel groups, patch size): the equal-budget pair first, then the same-patch reference
TOWERS = (
    ("vit, one patch embedding", "vit", None, (4, 4)),
    ("vit-groups, 3 SatMAE groups", "vit-groups", SATMAE_GROUPS, (8, 6)),
    ("vit-groups, 3 groups, same patch", "vit-groups", SATMAE_GROUPS, (4, 4)),
)


def demo_records(folder: Path, n: int) -> list[Record]:
    """The demo chips as the ``demo`` layout reads them (generated into ``folder`` first, without the EuroSAT set)."""
    write_demo(folder, n, seed=0, eurosat_per_class=0)
    records, problems = SatelliteDomain().layouts()["demo"](DataConfig(layout="demo", demo={"dir": folder, "n": n}))
    if problems:
        raise SystemExit(f"demo data has problems: {problems[:3]}")
    return records


def plain_rasterio(paths: Sequence[Path], config: dict[str, Any]) -> list[torch.Tensor]:
    """Read + normalise + resize with rasterio and torch only: what one writes without a library."""
    import rasterio

    stats = np.array([config["band_stats"][b] for b in config["bands"]], dtype=np.float32)
    mean, std = stats[:, 0, None, None], stats[:, 1, None, None]
    out = []
    for path in paths:
        with rasterio.open(path) as src:
            index = [list(src.descriptions).index(b) + 1 for b in config["bands"]]
            data = src.read(index, masked=True)
        nodata = np.ma.getmaskarray(data).any(axis=0)
        pixels = np.where(nodata, np.nan, (data.filled(0).astype(np.float32) - mean) / std).astype(np.float32)
        image = torch.from_numpy(pixels)[None]
        out.append(F.interpolate(image, size=tuple(config["size"]), mode="bilinear", antialias=True)[0])
    return out


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def throughput(records: list[Record], preprocessor: SatellitePreprocessor, tmp: Path, repeats: int) -> dict:
    """Median seconds of (a), (b), (c) and the (a)-(b) difference on chips without nodata."""
    paths = [r.image for r in records]
    times: dict[str, list[float]] = {"plain": [], "cold": [], "warm": []}
    for repeat in range(repeats):
        dataset = image_dataset(records, preprocessor, tmp / f"cache{repeat}")  # empty: a fresh folder

        def run_dataset(dataset: CachedDataset = dataset) -> list[torch.Tensor]:
            return [dataset[i]["image"] for i in range(len(dataset))]

        def run_plain() -> list[torch.Tensor]:
            return plain_rasterio(paths, preprocessor.config)

        if repeat % 2 == 0:  # alternate the order so machine load drifts hit both alike
            (t_plain, plain), (t_cold, cold) = timed(run_plain), timed(run_dataset)
        else:
            (t_cold, cold), (t_plain, plain) = timed(run_dataset), timed(run_plain)
        t_warm, warm = timed(run_dataset)
        times["plain"].append(t_plain)
        times["cold"].append(t_cold)
        times["warm"].append(t_warm)
    full = [k for k, image in enumerate(cold) if not torch.isnan(image).any()]
    return {
        **{name: statistics.median(values) for name, values in times.items()},
        "max_diff": max(float((plain[k] - cold[k]).abs().max()) for k in full),
        "n_full": len(full),
        "warm_equals_cold": all(  # NaN (nodata) included: NaN == NaN here
            torch.allclose(a, b, rtol=0.0, atol=0.0, equal_nan=True) for a, b in zip(cold, warm, strict=True)
        ),
        "batch": torch.stack(warm),
    }


def mae_step_seconds(
    images: torch.Tensor, tower: str, groups: list[list[str]] | None, patch: tuple[int, int], steps: int
) -> tuple[int, float]:
    """(tokens per image, median seconds of one optimisation step after one warm-up step)."""
    cfg = ImageEncoderConfig(
        type=tower,
        channel_groups=groups,
        patch_size=patch,
        hidden_size=128,
        depth=4,
        heads=4,
        decoder_hidden_size=64,
        decoder_depth=1,
        decoder_heads=4,
    )
    stage = MAEStageConfig(steps=steps, batch_size=len(images), lr=1.5e-3)
    torch.manual_seed(0)
    encoder = build_image_encoder(cfg, in_channels=len(BANDS), img_size=images.shape[-2:], channel_names=BANDS)
    mae = build_mae(encoder, cfg, stage)
    optimizer = build_optimizer(resolve_groups(mae, weight_decay_groups(mae, stage.weight_decay)), stage)
    pixels, valid = split_nodata(images)
    seconds = []
    for step in range(steps + 1):
        start = time.perf_counter()
        loss, _, _ = mae(pixels, valid=valid)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(mae.parameters(), stage.clip_grad_norm)
        optimizer.step()
        if step:  # the first step pays for allocations and kernel choice
            seconds.append(time.perf_counter() - start)
    return encoder.num_patches, statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="demo chips to generate")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=48, help="output height = width (48: equal token budgets)")
    parser.add_argument("--batch", type=int, default=32, help="MAE batch (the quickstart's)")
    parser.add_argument("--steps", type=int, default=10, help="timed MAE steps per tower (after one warm-up)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        records = demo_records(tmp_path / "demo", args.n)
        section = SatellitePreprocessConfig(bands=BANDS, size=(args.size, args.size))
        train = [r for r in records if r.split == "train"]
        preprocessor = SatellitePreprocessor(SatelliteDomain().fit_preprocess(section, train))
        result = throughput(records, preprocessor, tmp_path, args.repeats)

    n, cold = len(records), result["cold"]
    print(
        f"{n} demo chips (12 bands, 64x64 uint16 GeoTIFF) -> {args.size}x{args.size}, per-band normalised; "
        f"torch threads {torch.get_num_threads()}; median of {args.repeats}\n"
    )
    print("| pipeline | seconds | images/s | vs cold |")
    print("|---|---|---|---|")
    for name, key in (
        ("(a) plain rasterio read + normalise", "plain"),
        ("(b) domainclip cold (empty cache)", "cold"),
        ("(c) domainclip warm (cache)", "warm"),
    ):
        print(f"| {name} | {result[key]:.3f} | {n / result[key]:.0f} | {cold / result[key]:.1f}x |")
    speedup = cold / result["warm"]
    print(
        f"\nmax |plain - domainclip| on the {result['n_full']} chips without nodata = {result['max_diff']:.2e}; "
        f"warm == cold: {result['warm_equals_cold']}; warm >= 10x cold: {'yes' if speedup >= 10 else 'NO'} "
        f"({speedup:.1f}x)\n"
    )

    batch = result["batch"][: args.batch]
    print(
        f"MAE step (forward + backward + clip + AdamW), batch {len(batch)} at {args.size}x{args.size}, mask ratio "
        f"0.75, hidden 128, depth 4, decoder 64 x 1; median of {args.steps} steps after one warm-up\n"
    )
    print("| tower | patch | tokens / image | ms / step | vs vit |")
    print("|---|---|---|---|---|")
    baseline = None
    for name, tower, groups, patch in TOWERS:
        tokens, seconds = mae_step_seconds(batch, tower, groups, patch, args.steps)
        baseline = baseline or seconds
        print(f"| {name} | {patch[0]}x{patch[1]} | {tokens} | {1000 * seconds:.0f} | {seconds / baseline:.2f}x |")


if __name__ == "__main__":
    main()
