import pytest

from scripts.ramps import LinearRamp


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
