"""Efron partial likelihood: equal to lifelines and torchsurv, finite and differentiable on degenerate batches."""

from __future__ import annotations

import warnings

import pytest
import torch

from domainclip.heads.cox_loss import efron_neg_log_likelihood


def test_matches_lifelines_log_likelihood_on_rossi():
    from lifelines import CoxPHFitter
    from lifelines.datasets import load_rossi

    rossi = load_rossi()
    cph = CoxPHFitter().fit(rossi, "week", "arrest")
    x = torch.tensor(rossi.drop(columns=["week", "arrest"]).to_numpy(), dtype=torch.float64)
    log_hz = x @ torch.tensor(cph.params_.to_numpy())
    nll = efron_neg_log_likelihood(
        log_hz,
        torch.tensor(rossi["week"].to_numpy(), dtype=torch.float64),
        torch.tensor(rossi["arrest"].to_numpy()),
    )
    assert nll.dtype == torch.float64
    assert -nll.item() == pytest.approx(cph.log_likelihood_, abs=1e-8)
    assert -nll.item() == pytest.approx(-658.7477, abs=1e-4)  # anchors.md


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_torchsurv_value_and_gradient_with_ties(seed):
    from torchsurv.loss.cox import neg_partial_log_likelihood

    g = torch.Generator().manual_seed(seed)
    n = 64
    time = torch.randint(1, 10, (n,), generator=g).float()  # heavy ties
    event = torch.rand(n, generator=g) < 0.6
    log_hz = torch.randn(n, generator=g, requires_grad=True)
    ours = efron_neg_log_likelihood(log_hz, time, event)
    (grad_ours,) = torch.autograd.grad(ours, log_hz)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchsurv warns about ties
        ref = neg_partial_log_likelihood(log_hz, event, time, ties_method="efron", reduction="sum")
    (grad_ref,) = torch.autograd.grad(ref, log_hz)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    assert torch.allclose(grad_ours, grad_ref, atol=1e-5)


def test_invariant_to_row_order_and_to_a_shift_of_all_log_hazards():
    g = torch.Generator().manual_seed(3)
    time = torch.randint(1, 6, (30,), generator=g).double()
    event = torch.rand(30, generator=g) < 0.5
    event[0] = True
    log_hz = torch.randn(30, generator=g, dtype=torch.float64)
    base = efron_neg_log_likelihood(log_hz, time, event)
    perm = torch.randperm(30, generator=g)
    assert efron_neg_log_likelihood(log_hz[perm], time[perm], event[perm]).item() == pytest.approx(
        base.item(), abs=1e-10
    )
    assert efron_neg_log_likelihood(log_hz + 123.0, time, event).item() == pytest.approx(base.item(), abs=1e-8)


def test_hand_computed_efron_value_for_two_tied_events():
    # events at t=1 for hazards e^a, e^b; one later sample e^c at risk.
    a, b, c = 0.3, -0.2, 0.5
    log_hz = torch.tensor([a, b, c], dtype=torch.float64)
    time = torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64)
    event = torch.tensor([1, 1, 0])
    ea, eb, ec = (torch.tensor(v, dtype=torch.float64).exp() for v in (a, b, c))
    risk, tied = ea + eb + ec, ea + eb
    expected = -((a + b) - torch.log(risk) - torch.log(risk - 0.5 * tied))
    assert efron_neg_log_likelihood(log_hz, time, event).item() == pytest.approx(expected.item(), abs=1e-12)


@pytest.mark.parametrize(
    "log_hz, time, event",
    [
        ([0.4, -1.0, 2.0], [1.0, 2.0, 3.0], [0, 0, 0]),  # no events
        ([0.7], [5.0], [1]),  # one sample
        ([0.1, 0.9, -0.3], [2.0, 2.0, 2.0], [1, 1, 1]),  # all tied events
        ([800.0, -800.0, 0.0], [1.0, 2.0, 3.0], [1, 1, 0]),  # extreme hazards
        (
            [0.1, 0.2, 0.3, 0.4],
            [1.0, 1.0, 1.0, 2.0],
            [1, 1, 1, 1],
        ),  # tie groups of different sizes (padding)
    ],
    ids=["no-events", "one-sample", "all-tied", "extreme", "uneven-ties"],
)
def test_degenerate_batches_give_finite_loss_and_gradient(log_hz, time, event):
    h = torch.tensor(log_hz, dtype=torch.float64, requires_grad=True)
    loss = efron_neg_log_likelihood(h, torch.tensor(time, dtype=torch.float64), torch.tensor(event))
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(h.grad).all()
    if not any(event) or len(log_hz) == 1:
        assert loss.item() == 0.0
        assert (h.grad == 0).all()
