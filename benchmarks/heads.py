"""Benchmarks of the heads: Harrell's C speed/equality and exact top-10 retrieval throughput.

    python benchmarks/heads.py            # full sizes (about a minute on 2 cores)
    python benchmarks/heads.py --quick    # smaller sizes, for a smoke run
    python benchmarks/heads.py --threads 1  # one torch / faiss thread (fairer on a busy machine)

1. Harrell's C on n = 100,000 (target: <= 2 s): domainclip vs lifelines, then on
   n = 20,000 side by side with scikit-survival (its reference implementation)
   to show equal values. Times are integers and risks are rounded, so both
   tied times and tied risks occur.
2. Top-10 inner-product search of 1,000 queries over 100,000 x 512 unit vectors:
   queries per second of exact torch (chunked matmul + topk) and faiss
   IndexFlatIP, and the share of identical neighbour lists.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def timed(fn: Callable[[], Any], repeats: int = 1) -> tuple[Any, float]:
    """Result and the best wall time of ``repeats`` runs."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def survival_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    risk = np.round(rng.normal(size=n), 2)  # ~600 distinct values: many tied risks
    time_ = np.ceil(rng.exponential(scale=np.exp(-risk)) * 365)  # days: many tied times
    event = rng.random(n) < 0.6
    return time_, event, risk


def bench_concordance(n_large: int, n_compare: int) -> None:
    from lifelines.utils import concordance_index
    from sksurv.metrics import concordance_index_censored

    from domainclip.heads.concordance import harrell_c

    print(
        f"\n## Harrell's C (tied times and tied risks), {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads"
    )
    t, e, r = survival_data(n_large, 0)
    harrell_c(t[:1000], e[:1000], r[:1000])  # warm-up (imports, first allocation)
    ours, ours_s = timed(lambda: harrell_c(t, e, r), repeats=3)
    theirs, theirs_s = timed(lambda: concordance_index(t, -r, e))
    print(f"\nn = {n_large:,}")
    print("| implementation | C-index | seconds |\n|---|---|---|")
    print(f"| domainclip harrell_c | {ours:.10f} | {ours_s:.3f} |")
    print(f"| lifelines concordance_index(t, -risk, e) | {theirs:.10f} | {theirs_s:.3f} |")

    t, e, r = survival_data(n_compare, 1)
    ours, ours_s = timed(lambda: harrell_c(t, e, r))
    (ref, *_), ref_s = timed(lambda: concordance_index_censored(e, t, r))
    print(f"\nn = {n_compare:,}")
    print("| implementation | C-index | seconds |\n|---|---|---|")
    print(f"| domainclip harrell_c | {ours:.12f} | {ours_s:.3f} |")
    print(f"| scikit-survival concordance_index_censored | {ref:.12f} | {ref_s:.3f} |")
    print(f"| absolute difference | {abs(ours - ref):.2e} | |")


def bench_retrieval(n_index: int, n_queries: int, dim: int, k: int) -> None:
    from domainclip.heads.retrieval import faiss_available, topk_search

    print(f"\n## Exact top-{k} search: {n_queries:,} queries over {n_index:,} x {dim} unit vectors (float32)")
    g = torch.Generator().manual_seed(0)
    index = torch.nn.functional.normalize(torch.randn(n_index, dim, generator=g), dim=1)
    queries = torch.nn.functional.normalize(torch.randn(n_queries, dim, generator=g), dim=1)
    rows = []
    (_, ids_torch), torch_s = timed(lambda: topk_search(queries, index, k, backend="torch"), repeats=2)
    rows.append((f"torch chunked matmul + topk, threads: {torch.get_num_threads()}", torch_s))
    same = None
    if faiss_available():
        import faiss

        (_, ids_faiss), faiss_s = timed(lambda: topk_search(queries, index, k, backend="faiss"), repeats=2)
        rows.append(
            (
                f"faiss IndexFlatIP incl. index build, threads: {faiss.omp_get_max_threads()}",
                faiss_s,
            )
        )
        same = float((ids_torch == ids_faiss).all(dim=1).double().mean())
    print("| backend | seconds | queries / s |\n|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} | {n_queries / seconds:,.0f} |")
    if same is not None:
        print(f"\nidentical top-{k} lists (torch vs faiss): {same:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch and faiss threads (default: library default)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        try:
            import faiss

            faiss.omp_set_num_threads(args.threads)
        except ImportError:
            pass
    if args.quick:
        bench_concordance(10_000, 2_000)
        bench_retrieval(10_000, 200, 512, 10)
    else:
        bench_concordance(100_000, 20_000)
        for n_index in (10_000, 100_000):
            bench_retrieval(n_index, 1_000, 512, 10)


if __name__ == "__main__":
    main()
