"""CT input pipeline throughput: plain MONAI vs domainclip cold vs domainclip warm (disk cache).

All three run on the same demo NIfTI files with the same preprocessing (RAS, HU window
[-1000, 1000] -> [0, 1], 5 mm, 64^3 by default):

(a) a plain MONAI ``Compose`` (LoadImage + the same transforms), no cache;
(b) domainclip's ``CachedDataset`` with an empty cache (decode + preprocess + write);
(c) the same dataset again: every volume comes from the cache.

Each pass is repeated ``--repeats`` times (fresh cache for (b)) and the median is shown.
The script also checks that (a) and (b) produce the same tensors.

    python benchmarks/ct_pipeline.py --n 24 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from monai.transforms import (
    Compose,
    EnsureChannelFirst,
    LoadImage,
    NormalizeIntensity,
    Orientation,
    ResizeWithPadOrCrop,
    ScaleIntensityRange,
    Spacing,
)

from domainclip.data.cache import DiskCache
from domainclip.data.dataset import CachedDataset
from domainclip.data.manifest import read_manifest
from domainclip.domains.ct.demo import write_demo
from domainclip.domains.ct.preprocess import CTPreprocessor


def plain_monai(config: dict) -> Compose:
    """The same transforms as ``CTPreprocessor(config)``, loaded by MONAI's own ``LoadImage``."""
    window = config["hu_window"]
    steps = [
        LoadImage(image_only=True, reader="NibabelReader"),
        EnsureChannelFirst(),
        Orientation(axcodes="RAS", labels=None),
        ScaleIntensityRange(a_min=window[0], a_max=window[1], b_min=0.0, b_max=1.0, clip=True),
        Spacing(pixdim=config["spacing"], mode="bilinear", padding_mode="border", dtype=np.float32),
        ResizeWithPadOrCrop(spatial_size=config["size"], mode="constant", value=0.0),
    ]
    if config["normalize"] is not None:
        mean, std = config["normalize"]
        steps.append(NormalizeIntensity(subtrahend=mean, divisor=std, dtype=np.float32))
    return Compose(steps)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="demo studies to generate")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spacing", type=float, nargs=3, default=(5.0, 5.0, 5.0))
    parser.add_argument("--size", type=int, nargs=3, default=(64, 64, 64))
    args = parser.parse_args()
    window = (-1000.0, 1000.0)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        records = read_manifest(write_demo(tmp_path / "demo", args.n, seed=0))
        paths = [r.image for r in records]
        config = {"spacing": list(args.spacing), "size": list(args.size), "hu_window": list(window)}
        preprocessor = CTPreprocessor(config)
        monai_pipeline = plain_monai(preprocessor.config)

        monai_times, cold_times, warm_times = [], [], []
        for repeat in range(args.repeats):
            dataset = CachedDataset(records, preprocessor, DiskCache(tmp_path / f"cache{repeat}", preprocessor.config))

            def run_monai() -> list[torch.Tensor]:
                return [torch.as_tensor(monai_pipeline(str(p))) for p in paths]

            def run_dataset(dataset: CachedDataset = dataset) -> list[torch.Tensor]:
                return [dataset[i]["image"] for i in range(len(dataset))]

            if repeat % 2 == 0:  # alternate the order so machine load drifts hit both alike
                (t_monai, monai_out), (t_cold, cold_out) = timed(run_monai), timed(run_dataset)
            else:
                (t_cold, cold_out), (t_monai, monai_out) = timed(run_dataset), timed(run_monai)
            t_warm, warm_out = timed(run_dataset)
            monai_times.append(t_monai)
            cold_times.append(t_cold)
            warm_times.append(t_warm)

        max_diff = max(float((a.float() - b).abs().max()) for a, b in zip(monai_out, cold_out))
        identical_warm = all(torch.equal(a, b) for a, b in zip(cold_out, warm_out))

    n = len(records)
    cold = statistics.median(cold_times)
    rows = [
        ("(a) plain MONAI Compose", statistics.median(monai_times)),
        ("(b) domainclip cold", cold),
        ("(c) domainclip warm (cache)", statistics.median(warm_times)),
    ]
    print(
        f"{n} demo volumes (96x80x96 @ 4 mm NIfTI.gz) -> spacing {tuple(args.spacing)} mm, size "
        f"{tuple(args.size)}; torch threads {torch.get_num_threads()}; median of {args.repeats}"
    )
    print(f"{'pipeline':<30} {'seconds':>8} {'volumes/s':>10} {'vs cold':>8}")
    for name, seconds in rows:
        print(f"{name:<30} {seconds:>8.3f} {n / seconds:>10.1f} {cold / seconds:>7.1f}x")
    print(f"max |MONAI - domainclip| = {max_diff:.2e}; warm == cold: {identical_warm}")
    speedup = cold / statistics.median(warm_times)
    print(f"warm >= 10x cold: {'yes' if speedup >= 10 else 'NO'} ({speedup:.1f}x)")


if __name__ == "__main__":
    main()
