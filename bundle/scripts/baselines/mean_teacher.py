"""UA-MT: uncertainty-aware mean teacher (Yu et al., MICCAI 2019), in the SSL4MIS form."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.optim.swa_utils import AveragedModel

from ..losses import normalized_entropy, uncertainty_masked_mse
from ..networks import unwrap
from .base import BaselineTrainer


class UncertaintyAwareMeanTeacherTrainer(BaselineTrainer):
    """The teacher is an exponential moving average of the student (``torch.optim.swa_utils.AveragedModel``
    with an EMA ``multi_avg_fn``), updated after every step and never trained by gradient. On unlabeled
    images the student's softmax is pulled towards the teacher's (input noise ``N(0, noise_std^2)`` clipped
    to ``noise_clip``) where the teacher is certain: the normalised entropy of the mean of
    ``num_passes`` noisy teacher predictions is below ``0.75 + 0.25 * threshold_ramp(epoch)``.
    The reference's noise (0.1, clip 0.2) is for [0, 1] images; these images span [-1, 1], hence 0.2 / 0.4.

    Args:
        args, kwargs: as for ``BaselineTrainer``.
        teacher: the student's exponential moving average.
        threshold_ramp: the certainty threshold's ramp from 0 to 1 as a function of the epoch.
        num_passes: noisy teacher predictions per batch.
        noise_std, noise_clip: the teacher's input noise.
    """

    def __init__(
        self,
        *args,
        teacher: AveragedModel,
        threshold_ramp: Callable[[int], float],
        num_passes: int = 8,
        noise_std: float = 0.2,
        noise_clip: float = 0.4,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        if num_passes < 1:
            raise ValueError(f"num_passes must be >= 1, got {num_passes}.")
        self.teacher = teacher
        self.threshold_ramp = threshold_ramp
        self.num_passes = num_passes
        self.noise_std = noise_std
        self.noise_clip = noise_clip

    def checkpoint_state(self) -> dict:
        return {**super().checkpoint_state(), "ema_teacher": self.teacher}

    def _perturbed(self, images: torch.Tensor) -> torch.Tensor:
        noise = torch.clamp(torch.randn_like(images) * self.noise_std, -self.noise_clip, self.noise_clip)
        return images + noise

    def losses(self, images: torch.Tensor, labels: torch.Tensor, num_labeled: int):
        logits = self.segment(self.network, images)
        supervised = self.loss_function(logits[:num_labeled], labels)
        unlabeled = images[num_labeled:]
        with torch.no_grad():
            teacher = self.teacher.module
            target = torch.softmax(self.segment(teacher, self._perturbed(unlabeled)), dim=1)
            passes = [torch.softmax(self.segment(teacher, self._perturbed(unlabeled)), dim=1) for _ in range(self.num_passes)]
            uncertainty = normalized_entropy(torch.stack(passes).mean(dim=0))
            certain = uncertainty < 0.75 + 0.25 * float(self.threshold_ramp(self.state.epoch))
        consistency = uncertainty_masked_mse(torch.softmax(logits[num_labeled:], dim=1), target, certain)
        self.certain_fraction = certain.float().mean().item()
        return logits, supervised, {"consistency": consistency}

    def after_step(self) -> None:
        self.teacher.update_parameters(unwrap(self.network))
