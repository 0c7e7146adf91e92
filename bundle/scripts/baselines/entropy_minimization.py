"""EM: entropy minimisation (Vu et al., CVPR 2019), in the SSL4MIS form."""

from __future__ import annotations

import torch

from ..losses import normalized_entropy
from .base import BaselineTrainer


class EntropyMinimizationTrainer(BaselineTrainer):
    """Supervised loss on labeled images + lambda * mean normalised entropy of the softmax on all images."""

    def losses(self, images: torch.Tensor, labels: torch.Tensor, num_labeled: int):
        logits = self.segment(self.network, images)
        supervised = self.loss_function(logits[:num_labeled], labels)
        return logits, supervised, {"entropy": normalized_entropy(torch.softmax(logits, dim=1)).mean()}
