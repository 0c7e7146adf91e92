import pytest

import math

from scripts.ramps import LinearRamp, SigmoidRamp


def test_linear_ramp_values():
    ramp = LinearRamp(max_value=5.0, length=200)
    assert ramp(0) == 0.0
    assert ramp(1) == pytest.approx(0.025)
    assert ramp(100) == pytest.approx(2.5)
    assert ramp(200) == pytest.approx(5.0)
    assert ramp(250) == pytest.approx(5.0)


def test_linear_ramp_rejects_empty_length():
    with pytest.raises(ValueError):
        LinearRamp(5.0, 0)


def test_sigmoid_ramp_values():
    ramp = SigmoidRamp(max_value=5.0, length=100)
    assert ramp(0) == pytest.approx(5.0 * math.exp(-5.0))
    assert ramp(50) == pytest.approx(5.0 * math.exp(-1.25))
    assert ramp(100) == pytest.approx(5.0) and ramp(150) == pytest.approx(5.0)
    assert all(ramp(s) < ramp(s + 1) for s in range(100))


def test_warmup_step_lr_rises_then_steps_and_is_step_lr_without_warmup():
    import torch

    from scripts.ramps import WarmupStepLR

    def lrs(scheduler_class, **kwargs):
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        scheduler = scheduler_class(optimizer, **kwargs)
        values = []
        for _ in range(8):
            values.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return values

    assert lrs(WarmupStepLR, step_size=3, gamma=0.5) == lrs(torch.optim.lr_scheduler.StepLR, step_size=3, gamma=0.5)
    assert lrs(WarmupStepLR, step_size=3, gamma=0.5, warmup_epochs=3) == [0.25, 0.5, 0.75, 1, 1, 1, 0.5, 0.5]
