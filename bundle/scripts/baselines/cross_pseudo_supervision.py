"""CPS: cross pseudo supervision (Chen et al., CVPR 2021) between two differently initialised networks."""

from __future__ import annotations

import torch

from ..losses import cross_pseudo_supervision
from .base import BaselineTrainer


class CrossPseudoSupervisionTrainer(BaselineTrainer):
    """Both networks learn from the labels and from each other's argmax on all images (the same CPS term
    as our co-training). ``network`` is validated and saved; ``optimizer`` covers both networks.

    Args:
        args, kwargs: as for ``BaselineTrainer``.
        second_network: the other network, of the same architecture and another initialisation.
    """

    def __init__(self, *args, second_network: torch.nn.Module, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.second_network = second_network

    def checkpoint_state(self) -> dict:
        return {**super().checkpoint_state(), "second_network": self.second_network}

    def losses(self, images: torch.Tensor, labels: torch.Tensor, num_labeled: int):
        self.second_network.train()
        logits_a, logits_b = self.segment(self.network, images), self.segment(self.second_network, images)
        supervised = self.loss_function(logits_a[:num_labeled], labels) + self.loss_function(
            logits_b[:num_labeled], labels
        )
        return logits_a, supervised, {"cps": cross_pseudo_supervision(self.loss_function, logits_a, logits_b)}
