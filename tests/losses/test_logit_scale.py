"""LogitScale: open_clip's initialisation, clamp after each step, no weight decay."""

from __future__ import annotations

import math

import pytest
import torch

from domainclip.models.logit_scale import LogitScale


def test_initial_multiplier_is_one_over_0_07():
    assert LogitScale()().item() == pytest.approx(1 / 0.07)


def test_clamped_to_zero_and_log_100_after_an_optimizer_step():
    scale = LogitScale()
    optimizer = torch.optim.SGD(scale.parameters(), lr=10.0)
    (-scale()).backward()  # pushes the scale up, far past 100
    optimizer.step()
    assert scale.log_scale.item() > math.log(100)
    scale.after_optimizer_step()
    assert scale().item() == pytest.approx(100.0)
    with torch.no_grad():
        scale.log_scale.fill_(-3.0)
    scale.after_optimizer_step()
    assert scale.log_scale.item() == 0.0


def test_is_a_scalar_parameter_so_weight_decay_grouping_skips_it():
    ((name, parameter),) = LogitScale().named_parameters()
    assert name == "log_scale" and parameter.ndim == 0


def test_rejects_an_initial_value_outside_the_clamp():
    with pytest.raises(ValueError, match="init must be within"):
        LogitScale(init=math.log(200))
