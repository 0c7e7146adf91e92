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
