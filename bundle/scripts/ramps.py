"""Schedules for the weight of unsupervised loss terms."""

from __future__ import annotations

import math


class LinearRamp:
    """``max_value * min(step / length, 1)``; the paper's lambda with ``step`` = current epoch (1-based)
    and ``length`` = max epochs, so lambda reaches ``max_value`` at the last epoch."""

    def __init__(self, max_value: float, length: int) -> None:
        if length <= 0:
            raise ValueError(f"ramp length must be positive, got {length}.")
        self.max_value = float(max_value)
        self.length = int(length)

    def progress(self, step: int) -> float:
        """``step / length`` clipped to [0, 1]."""
        return min(max(step, 0) / self.length, 1.0)

    def __call__(self, step: int) -> float:
        return self.max_value * self.progress(step)


class SigmoidRamp(LinearRamp):
    """``max_value * exp(-5 (1 - x)^2)`` with ``x = min(step / length, 1)`` (Laine & Aila 2017; the SSL4MIS
    default): a slow start that keeps pseudo-label terms small while the networks learn from labels."""

    def __call__(self, step: int) -> float:
        return self.max_value * math.exp(-5.0 * (1.0 - self.progress(step)) ** 2)
