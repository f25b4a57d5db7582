"""One rank of the distributed loss tests.

Usage: ``python distributed_worker.py RANK WORLD INIT INPUTS OUT``.

Runs every case of :mod:`distributed_cases` inside one gloo process group and writes
the results to ``OUT/rank{RANK}.safetensors`` (keys ``case::field``).
"""

from __future__ import annotations

import sys
import warnings
from datetime import timedelta

import torch
import torch.distributed as dist
from distributed_cases import CASES, ORACLE_CASES, local_slice, run_case
from open_clip_oracle import open_clip_loss_module
from safetensors.torch import load_file, save_file


def main(rank: int, world_size: int, init: str, inputs_path: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", FutureWarning)  # open_clip's deprecated all_gather
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world_size, timeout=timedelta(seconds=60))
    local = local_slice(load_file(inputs_path), rank)
    oracle = open_clip_loss_module()
    results = {}
    for name in CASES + ORACLE_CASES:
        for field, value in run_case(name, local, rank, world_size, oracle).items():
            results[f"{name}::{field}"] = value.contiguous()
    dist.destroy_process_group()
    save_file(results, f"{out_dir}/rank{rank}.safetensors")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
