"""Schedules over epochs: the weight of unsupervised loss terms, and the learning rate with a warm-up."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


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


class WarmupStepLR(LRScheduler):
    """The learning rate rises linearly over ``warmup_epochs`` (factor ``(epoch + 1) / (warmup_epochs + 1)``),
    then is multiplied by ``gamma`` every ``step_size`` epochs counted from the end of the warm-up. With no
    warm-up it is ``torch.optim.lr_scheduler.StepLR``."""

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, warmup_epochs: int = 0, last_epoch: int = -1
    ) -> None:
        if step_size <= 0 or warmup_epochs < 0:
            raise ValueError(f"need step_size > 0 and warmup_epochs >= 0, got {step_size} and {warmup_epochs}.")
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        self.warmup_epochs = int(warmup_epochs)
        super().__init__(optimizer, last_epoch)

    def factor(self, epoch: int) -> float:
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        return self.gamma ** ((epoch - self.warmup_epochs) // self.step_size)

    def get_lr(self) -> list[float]:
        return [base_lr * self.factor(self.last_epoch) for base_lr in self.base_lrs]
