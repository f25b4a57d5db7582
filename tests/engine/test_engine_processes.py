"""The engine in real processes: 2-process gloo DDP / FSDP2 vs 1 process, SIGKILL and resume.

Runs (all start together, then the killed runs are resumed):

- ``ddp``: 2 processes x batch 4 through ``launch_local`` (torchrun), checkpoint every 3 steps.
- ``single``: 1 process x batch 8.
- ``ddp_killed``: as ``ddp``, both ranks SIGKILLed inside step 5 (after the step-3
  checkpoint), then resumed in 2 new processes.
- ``fsdp_killed``: as ``ddp_killed`` with ``strategy=fsdp``.

Apart from the torchrun run, ranks are forked from a multiprocessing forkserver
that has already imported torch: separate OS processes joined by a gloo
process group through torchrun's environment variables (RANK, WORLD_SIZE,
MASTER_ADDR, ...), as the engine sees them under torchrun, without paying
torch's ~5 s import per process on a two-core machine.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
import torch
import train_tiny
from safetensors.torch import load_file

from domainclip.engine.checkpoint import CheckpointStore
from domainclip.engine.launch import launch_local

HERE = Path(__file__).resolve().parent
STEPS, CHECKPOINT_EVERY, HANG_AFTER = 8, 3, 4  # killed in step 5, after the step-3 checkpoint
TIMEOUT_S = 240
FORKSERVER = multiprocessing.get_context("forkserver")


def _args(out: Path, *extra: str) -> list[str]:
    return ["--out", str(out), "--steps", str(STEPS), "--checkpoint-every", str(CHECKPOINT_EVERY), *extra]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn(nproc: int, args: list[str], log_dir: Path) -> list[BaseProcess]:
    """Start ``nproc`` ranks of train_tiny (a plain single process when nproc == 1)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = str(_free_port())
    processes = []
    for rank in range(nproc):
        env = (
            {}
            if nproc == 1
            else {
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "WORLD_SIZE": str(nproc),
                "LOCAL_WORLD_SIZE": str(nproc),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": port,
            }
        )
        process = FORKSERVER.Process(target=train_tiny.run_rank, args=(args, env, str(log_dir / f"rank{rank}.log")))
        process.start()
        processes.append(process)
    return processes


def _logs(log_dir: Path) -> str:
    return "\n".join(p.read_text()[-2000:] for p in sorted(log_dir.glob("*.log")))


def _finish(
    processes: list[BaseProcess], log_dir: Path, respawn: Callable[[], list[BaseProcess]] | None = None
) -> None:
    """Join the ranks; assert they all exited 0. With ``respawn``, a run whose store could not bind its port is
    started again on a fresh one (twice at most): ``_free_port`` frees the port it found, and with several 2-rank
    runs at once another run's gloo connection can take that ephemeral port before the store binds it
    (EADDRINUSE). Such a run fails before it reads or writes any checkpoint, so starting it again is safe."""
    for attempt in range(3):
        for process in processes:
            process.join(timeout=TIMEOUT_S)
        codes = [process.exitcode for process in processes]
        if codes == [0] * len(codes) or respawn is None or attempt == 2 or "EADDRINUSE" not in _logs(log_dir):
            break
        processes = respawn()
    assert codes == [0] * len(codes), f"run in {log_dir} failed ({codes}):\n{_logs(log_dir)}"


def _kill_when_hanging(processes: list[BaseProcess], out: Path) -> None:
    """SIGKILL every rank once all are blocked inside step 5."""
    markers = [out / f"hanging-rank{rank}" for rank in range(len(processes))]
    deadline = time.monotonic() + TIMEOUT_S
    while not all(m.exists() for m in markers):
        if any(not p.is_alive() for p in processes) or time.monotonic() > deadline:
            for p in processes:
                p.kill()
            pytest.fail(f"run in {out} never reached the kill point:\n{_logs(out)}")
        time.sleep(0.05)
    for process in processes:
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        assert process.exitcode == -signal.SIGKILL


def _final_weights(out: Path) -> dict[str, torch.Tensor]:
    store = CheckpointStore(out / "checkpoints" / "tiny")
    ref = store.latest()
    assert ref is not None and ref.finished and ref.step == STEPS
    return store.load_weights(ref)


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def _logged_steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "logs" / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    FORKSERVER.set_forkserver_preload(
        ["train_tiny", "torch._dynamo", "torch.distributed.fsdp", "torch.distributed.checkpoint.state_dict"]
    )
    root = tmp_path_factory.mktemp("engine_runs")
    out = {name: root / name for name in ("ddp", "single", "ddp_killed", "fsdp_killed")}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    launched: dict[str, int] = {}
    reference = threading.Thread(
        target=lambda: launched.setdefault(
            "code", launch_local(2, _args(out["ddp"], "--batch", "4"), module="train_tiny", env=env)
        )
    )
    reference.start()
    single = _spawn(1, _args(out["single"], "--batch", "8"), out["single"])
    strategies = {"ddp_killed": "ddp", "fsdp_killed": "fsdp"}
    killed = {
        name: _spawn(
            2, _args(out[name], "--batch", "4", "--strategy", strategy, "--hang-after", str(HANG_AFTER)), out[name]
        )
        for name, strategy in strategies.items()
    }
    for name, processes in killed.items():
        _kill_when_hanging(processes, out[name])
    resume = {
        name: functools.partial(
            _spawn, 2, _args(out[name], "--batch", "4", "--strategy", strategy, "--resume"), out[name] / "resume"
        )
        for name, strategy in strategies.items()
    }
    resumed = {name: start() for name, start in resume.items()}
    _finish(single, out["single"])
    for name, processes in resumed.items():
        _finish(processes, out[name] / "resume", respawn=resume[name])
    reference.join(timeout=TIMEOUT_S)
    assert launched.get("code") == 0, "the 2-process reference run through launch_local failed"
    return out


def test_two_process_ddp_equals_one_process_with_double_batch(runs: dict[str, Path]) -> None:
    assert _max_diff(_final_weights(runs["ddp"]), _final_weights(runs["single"])) < 1e-5
    # Only rank 0 logs: one line per step, not one per rank.
    assert _logged_steps(runs["ddp"]) == list(range(1, STEPS + 1))


def test_sigkilled_ddp_run_resumes_to_the_uninterrupted_weights(runs: dict[str, Path]) -> None:
    assert _max_diff(_final_weights(runs["ddp_killed"]), _final_weights(runs["ddp"])) < 1e-6
    # The killed run's metric lines are kept; the resumed run appends from the checkpoint (step 3).
    assert _logged_steps(runs["ddp_killed"]) == [1, 2, 3, 4, 4, 5, 6, 7, 8]


def test_sigkilled_fsdp_run_resumes_and_matches_one_process(runs: dict[str, Path]) -> None:
    final = _final_weights(runs["fsdp_killed"])
    assert _max_diff(final, _final_weights(runs["single"])) < 1e-5
    state = torch.load(
        CheckpointStore(runs["fsdp_killed"] / "checkpoints" / "tiny").latest().state_path, weights_only=True
    )
    assert state["strategy"] == "fsdp" and len(state["rng"]) == 2


@pytest.mark.parametrize("name", ["ddp", "single", "fsdp_killed"])
def test_fit_returns_the_trained_unwrapped_model(runs: dict[str, Path], name: str) -> None:
    returned = load_file(str(runs[name] / "returned.safetensors"))
    assert _max_diff(returned, _final_weights(runs[name])) == 0.0
