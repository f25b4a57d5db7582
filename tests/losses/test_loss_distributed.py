"""Every loss and mode on 2 gloo processes equals the single-process computation over
the concatenated batch (loss and every input gradient, with the factors documented in
domainclip.losses.clip), and matches open_clip's distributed ClipLoss/SigLipLoss.

Two worker processes are started once for the whole module (start-up dominates).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from distributed_cases import CASES, LOCAL_BATCH, MODES, SOFT, WORLD_SIZE, make_inputs
from loss_references import filip_loss, filip_scores, soft_infonce
from safetensors.torch import load_file, save_file

from domainclip.losses import PrototypeLoss, SigLipLoss, soft_targets

TOLERANCE = {"atol": 1e-9, "rtol": 1e-9}  # float64 throughout; the issue asks for 1e-5


@pytest.fixture(scope="module")
def inputs():
    return make_inputs()


@pytest.fixture(scope="module")
def ranks(inputs, tmp_path_factory):
    """Per-rank results ``{case: {field: tensor}}`` of one 2-process gloo run."""
    folder = tmp_path_factory.mktemp("distributed")
    save_file(inputs, str(folder / "inputs.safetensors"))
    worker = Path(__file__).with_name("distributed_worker.py")
    init = f"file://{folder / 'rendezvous'}"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                str(worker),
                str(rank),
                str(WORLD_SIZE),
                init,
                str(folder / "inputs.safetensors"),
                str(folder),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(WORLD_SIZE)
    ]
    logs = []
    for process in processes:
        try:
            logs.append(process.communicate(timeout=240)[0])
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            pytest.fail("distributed workers timed out")
    for process, log in zip(processes, logs):
        assert process.returncode == 0, f"worker failed:\n{log}"
    per_rank = []
    for rank in range(WORLD_SIZE):
        flat = load_file(str(folder / f"rank{rank}.safetensors"))
        cases: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in flat.items():
            case, field = key.split("::")
            cases.setdefault(case, {})[field] = value
        per_rank.append(cases)
    return per_rank


def _rows(rank: int) -> slice:
    return slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)


def _contrastive_expectation(objective, leaves: dict[str, torch.Tensor], mode: str, rank: int):
    """Expected results of one rank in a ClipLoss-style mode.

    ``objective(rows, detach_columns)`` is the naive loss of those rows.
    """
    local_loss, with_grad = MODES[mode]
    names = list(leaves)
    full = objective(slice(None), False)
    full_grads = dict(zip(names, torch.autograd.grad(full, list(leaves.values()))))
    factor = WORLD_SIZE if with_grad else 1
    expected = {f"d_{n}": factor * full_grads[n][_rows(rank)] for n in names if n != "scale"}
    if not local_loss:
        return {"loss": full, "d_scale": full_grads["scale"], **expected}
    own = objective(_rows(rank), not with_grad)
    own_grads = dict(zip(names, torch.autograd.grad(own, list(leaves.values()))))
    if not with_grad:  # only this rank's rows carry gradient: the documented partial gradient
        expected = {f"d_{n}": own_grads[n][_rows(rank)] for n in names if n != "scale"}
    return {"loss": own, "d_scale": own_grads["scale"], **expected}


def _expected(case: str, inputs, rank: int) -> dict[str, torch.Tensor]:
    family, _, variant = case.partition("/")
    mode = variant.split("/")[0]
    if family in ("clip", "soft", "soft-text"):
        x, y = inputs["image"].clone().requires_grad_(), inputs["text"].clone().requires_grad_()
        scale = inputs["scale"].clone().requires_grad_()
        size = x.shape[0]
        targets = text_targets = torch.eye(size, dtype=torch.float64)
        if family != "clip":
            text_findings = inputs["text_findings"].double() if family == "soft-text" else None
            options = {**SOFT, "text_findings": text_findings}
            findings, groups = inputs["findings"].double(), inputs["groups"]
            targets = soft_targets(findings, groups, **options)
            text_targets = soft_targets(findings, groups, texts_as_rows=True, **options)

        def objective(rows, detach_columns):
            columns = (lambda t: t.detach()) if detach_columns else (lambda t: t)
            return soft_infonce(x[rows], columns(y), y[rows], columns(x), scale, targets[rows], text_targets[rows])

        return _contrastive_expectation(objective, {"image": x, "text": y, "scale": scale}, mode, rank)
    if family == "filip":
        x = inputs["image_tokens"].clone().requires_grad_()
        y = inputs["text_tokens"].clone().requires_grad_()
        scale = inputs["scale"].clone().requires_grad_()
        mx, my = inputs["image_mask"], inputs["text_mask"]

        def objective(rows, detach_columns):
            columns = (lambda t: t.detach()) if detach_columns else (lambda t: t)
            image_to_text = filip_scores(x[rows], mx[rows], columns(y), my)[0]
            text_to_image = filip_scores(columns(x), mx, y[rows], my[rows])[1].T
            offset = 0 if rows == slice(None) else rows.start
            return filip_loss(image_to_text, text_to_image, scale, offset)

        return _contrastive_expectation(objective, {"image": x, "text": y, "scale": scale}, mode, rank)
    # SigLIP and prototypes: rank r's features get world_size * dL/d(own rows); the shared
    # parameters' gradients and the losses average over ranks to the single-process ones.
    x, y = inputs["image"].clone().requires_grad_(), inputs["text"].clone().requires_grad_()
    if family == "siglip":
        params = {
            "log_scale": torch.tensor(math.log(10.0), dtype=torch.float64, requires_grad=True),
            "bias": torch.tensor(-10.0, dtype=torch.float64, requires_grad=True),
        }
        loss = SigLipLoss()(x, y, params["log_scale"].exp(), params["bias"])
    else:
        torch.manual_seed(0)
        module = PrototypeLoss(dim=x.shape[1], num_prototypes=4).double()
        params = {"prototypes": module.prototypes}
        loss = module(x, y)
    grads = torch.autograd.grad(loss, [x, y, *params.values()])
    return {
        "mean loss": loss,
        "d_image": WORLD_SIZE * grads[0][_rows(rank)],
        "d_text": WORLD_SIZE * grads[1][_rows(rank)],
        **{f"mean d_{name}": g for name, g in zip(params, grads[2:])},
    }


@pytest.mark.parametrize("case", CASES)
def test_equals_single_process_over_the_concatenated_batch(case, ranks, inputs):
    checked = 0
    for rank in range(WORLD_SIZE):
        got = ranks[rank][case]
        for field, want in _expected(case, inputs, rank).items():
            if field.startswith("mean "):
                name = field.removeprefix("mean ")
                value = sum(ranks[r][case][name] for r in range(WORLD_SIZE)) / WORLD_SIZE
            else:
                value = got[field]
            torch.testing.assert_close(value, want.detach(), **TOLERANCE, msg=f"{case} rank {rank} {field}")
            checked += 1
    assert checked >= 8


@pytest.mark.parametrize("case", [c for c in CASES if c.split("/")[0] in ("clip", "soft", "soft-text", "filip")])
def test_mean_loss_over_ranks_is_the_global_loss(case, ranks, inputs):
    """(SigLIP and prototypes check this as their 'mean loss' above.)"""
    family = case.split("/")[0]
    global_case = {
        "clip": "clip/default/dense",
        "soft": "soft/default/dense",
        "soft-text": "soft-text/default/dense",
        "filip": "filip/default",
    }[family]
    global_loss = _expected(global_case, inputs, 0)["loss"]
    mean = sum(ranks[r][case]["loss"] for r in range(WORLD_SIZE)) / WORLD_SIZE
    torch.testing.assert_close(mean, global_loss.detach(), **TOLERANCE)


@pytest.mark.parametrize("mode", list(MODES))
def test_clip_loss_matches_open_clip_on_two_processes(mode, ranks):
    for rank in range(WORLD_SIZE):
        want, got = ranks[rank][f"open_clip/{mode}"], ranks[rank][f"clip/{mode}/dense"]
        for field in want:
            torch.testing.assert_close(got[field], want[field], **TOLERANCE, msg=f"{mode} rank {rank} {field}")


@pytest.mark.parametrize(("ours", "theirs"), [("gather", "gather"), ("neighbour", "shift")])
def test_siglip_matches_open_clip_on_two_processes(ours, theirs, ranks):
    for rank in range(WORLD_SIZE):
        want, got = ranks[rank][f"open_clip-siglip/{theirs}"], ranks[rank][f"siglip/{ours}"]
        for field in want:
            torch.testing.assert_close(got[field], want[field], **TOLERANCE, msg=f"{ours} rank {rank} {field}")
