"""Contrastive losses against open_clip's ClipLoss: time and peak memory, CPU, fp32.

    python benchmarks/losses.py            # the full table (about 10 minutes on 1 core)
    python benchmarks/losses.py --quick    # B = 256 / 1024 only, for a smoke run

Method. Every measurement runs in a fresh subprocess with ``torch.set_num_threads(1)``.
Time: forward + backward of one loss call, median of repeats; the cases of one batch
size are interleaved round by round in the same process so that load on a shared
machine hits them alike. Memory: one forward + backward in its own fresh process; the
peak resident set size (VmHWM, reset through /proc/self/clear_refs once the inputs
exist) minus the resident size just before the call; it counts every allocation
(logits, softmax buffers, gradients), not only torch's. Features: unit-norm (B, 512)
float32, logit scale 1/0.07; soft labels from 18 findings per sample (15 % present,
5 % uncertain = 0.5; the "unknown" rows add 5 % NaN).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

DIM = 512
NUM_FINDINGS = 18
CASES = {
    "open_clip ClipLoss": "open_clip",
    "ClipLoss": "clip",
    "SoftLabelClipLoss": "soft",
    "SoftLabelClipLoss, 5% unknown": "soft_unknown",
    "ClipLoss memory-bounded": "clip_bounded",
    "SoftLabelClipLoss memory-bounded": "soft_bounded",
}


# -- worker side (runs in a fresh process) -----------------------------------------------


def _build(case: str, batch: int):
    import torch
    import torch.nn.functional as F

    from domainclip.losses import ClipLoss, SoftLabelClipLoss

    generator = torch.Generator().manual_seed(0)
    image = F.normalize(torch.randn(batch, DIM, generator=generator), dim=1).requires_grad_()
    text = F.normalize(torch.randn(batch, DIM, generator=generator), dim=1).requires_grad_()
    scale = torch.tensor(1 / 0.07, requires_grad=True)
    findings = (torch.rand(batch, NUM_FINDINGS, generator=generator) < 0.15).float()
    findings[torch.rand(batch, NUM_FINDINGS, generator=generator) < 0.05] = 0.5
    if case == "soft_unknown":
        findings[torch.rand(batch, NUM_FINDINGS, generator=generator) < 0.05] = float("nan")
    if case == "open_clip":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "losses"))
        from open_clip_oracle import open_clip_loss_module

        loss = open_clip_loss_module().ClipLoss()
        return lambda: loss(image, text, scale)
    if case.startswith("clip"):
        loss = ClipLoss(memory_bounded=case.endswith("bounded"))
        return lambda: loss(image, text, scale)
    loss = SoftLabelClipLoss(memory_bounded=case.endswith("bounded"))
    return lambda: loss(image, text, scale, findings=findings)


def _step(run) -> tuple[float, float]:
    start = time.perf_counter()
    value = run()
    value.backward()
    return time.perf_counter() - start, value.item()


def _status_kb(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def worker_time(cases: list[str], batch: int, repeats: int, warmup: int) -> dict:
    runs = {case: _build(case, batch) for case in cases}
    times: dict[str, list[float]] = {case: [] for case in cases}
    values: dict[str, float] = {}
    for round_index in range(warmup + repeats):
        for case, run in runs.items():
            seconds, values[case] = _step(run)
            if round_index >= warmup:
                times[case].append(seconds)
    return {
        case: {"seconds": statistics.median(times[case]), "all": times[case], "loss": values[case]} for case in cases
    }


def worker_memory(case: str, batch: int) -> dict:
    _step(_build(case, 64))  # load kernels and libraries first: their pages are not the loss'
    run = _build(case, batch)
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    before = _status_kb("VmRSS")
    _, value = _step(run)
    return {"peak_mb": (_status_kb("VmHWM") - before) / 1024, "loss": value}


# -- driver side -----------------------------------------------------------------------


def _subprocess(*args: str) -> dict:
    command = [sys.executable, __file__, "--worker", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _measure(names: list[str], batch: int, repeats: int, warmup: int) -> dict[str, dict]:
    cases = [CASES[name] for name in names]
    timing = _subprocess("time", str(batch), ",".join(cases), str(repeats), str(warmup))
    results = {}
    for name, case in zip(names, cases):
        memory = _subprocess("memory", str(batch), case)
        results[name] = {**timing[case], "peak_mb": memory["peak_mb"]}
        print(
            f"  measured {name} at B={batch}: {results[name]['seconds']:.3f} s, {memory['peak_mb']:.0f} MB",
            file=sys.stderr,
        )
    return results


def _row(name: str, batch: int, result: dict, base: tuple[str, dict] | None, open_clip: dict) -> tuple:
    """One table row; ratios against ``base`` (its name, its result), loss against open_clip."""
    if base is None:
        time_ratio = memory_ratio = "-"
    else:
        base_name, base_result = base
        time_ratio = f"{result['seconds'] / base_result['seconds']:.2f} x {base_name}"
        memory_ratio = f"{result['peak_mb'] / base_result['peak_mb']:.4f} x {base_name}"
    same_targets = not name.startswith("SoftLabel")  # soft labels are a different loss
    return (
        name,
        batch,
        f"{result['seconds']:.3f}",
        time_ratio,
        f"{result['peak_mb']:.0f}",
        memory_ratio,
        f"{result['loss']:.6f}",
        f"{abs(result['loss'] - open_clip['loss']):.1e}" if same_targets else "-",
    )


def _table(rows: list[tuple]) -> str:
    header = (
        "case", "B", "time fwd+bwd (s)", "time ratio", "peak memory (MB)", "memory ratio",
        "loss", "abs(loss - open_clip)",
    )  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small batches only (smoke run)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    import torch

    dense_batches = (256, 1024) if args.quick else (1024, 4096)
    bounded_batch = 2048 if args.quick else 16384
    print(
        f"torch {torch.__version__}, CPU, float32, torch.set_num_threads(1), D = {DIM}; "
        f"median of {args.repeats} repeats (3 at B = {bounded_batch}); "
        "peak memory = VmHWM - VmRSS of a fresh process around one forward+backward"
    )
    rows = []
    soft = ["SoftLabelClipLoss", "SoftLabelClipLoss, 5% unknown"]
    for batch in dense_batches:
        results = _measure(["open_clip ClipLoss", "ClipLoss", *soft], batch, args.repeats, warmup=1)
        open_clip, ours = results["open_clip ClipLoss"], results["ClipLoss"]
        rows.append(_row("open_clip ClipLoss", batch, open_clip, None, open_clip))
        rows.append(_row("ClipLoss", batch, ours, ("open_clip", open_clip), open_clip))
        rows += [_row(name, batch, results[name], ("ClipLoss", ours), open_clip) for name in soft]
    bounded = ["ClipLoss memory-bounded", "SoftLabelClipLoss memory-bounded"]
    results = _measure(["open_clip ClipLoss", *bounded], bounded_batch, repeats=3, warmup=0)
    open_clip = results["open_clip ClipLoss"]
    rows.append(_row("open_clip ClipLoss", bounded_batch, open_clip, None, open_clip))
    rows += [_row(name, bounded_batch, results[name], ("open_clip", open_clip), open_clip) for name in bounded]
    print(_table(rows))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        import torch

        torch.set_num_threads(1)
        kind, batch = sys.argv[2], int(sys.argv[3])
        if kind == "time":
            out = worker_time(sys.argv[4].split(","), batch, int(sys.argv[5]), int(sys.argv[6]))
        else:
            out = worker_memory(sys.argv[4], batch)
        print(json.dumps(out))
    else:
        main()
