"""CCT: cross-consistency training (Ouali et al., CVPR 2020), in the SSL4MIS form: auxiliary decoders on
perturbed encoder features must agree with the main decoder on unlabeled images."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from ..networks import DualPathwayDiffusionUNet, reinitialise_convolutions
from ..unet_stages import decode
from .base import BaselineTrainer


def feature_noise(x: torch.Tensor, magnitude: float = 0.3) -> torch.Tensor:
    """``x + x * u`` with ``u ~ U(-magnitude, magnitude)`` per feature element, shared over the batch."""
    return x + x * torch.empty_like(x[:1]).uniform_(-magnitude, magnitude)


def dropout(x: torch.Tensor, p: float = 0.3) -> torch.Tensor:
    return nn.functional.dropout(x, p, training=True)


def feature_dropout(x: torch.Tensor) -> torch.Tensor:
    """Drop the most activated positions: those whose channel mean exceeds ``U(0.7, 0.9)`` of its maximum."""
    attention = x.mean(dim=1, keepdim=True)
    peak = attention.flatten(1).max(dim=1).values.reshape(-1, *([1] * (x.ndim - 1)))
    threshold = peak * torch.empty_like(peak).uniform_(0.7, 0.9)
    return x * (attention < threshold).to(x.dtype)


PERTURBATIONS = {"feature_noise": feature_noise, "dropout": dropout, "feature_dropout": feature_dropout}


class AuxiliaryDecoders(nn.Module):
    """One copy of the mask pathway's decoder (and output block, re-initialised) per perturbation; each
    decodes the encoder features (bottleneck and skips) after its perturbation."""

    def __init__(
        self, network: DualPathwayDiffusionUNet,
        perturbations: Sequence[str] = ("feature_noise", "dropout", "feature_dropout"),
    ) -> None:
        super().__init__()
        unknown = sorted(set(perturbations) - set(PERTURBATIONS))
        if unknown:
            raise ValueError(f"unknown perturbations {unknown}; known: {sorted(PERTURBATIONS)}")
        self.perturbations = list(perturbations)
        self.num_classes = network.num_classes
        unet = network.mask_unet
        self.decoders = nn.ModuleList(copy.deepcopy(unet.up_blocks) for _ in self.perturbations)
        self.outs = nn.ModuleList(copy.deepcopy(unet.out) for _ in self.perturbations)
        for out in self.outs:
            reinitialise_convolutions(out)

    def forward(self, h: torch.Tensor, skips: Sequence[torch.Tensor], emb: torch.Tensor) -> list[torch.Tensor]:
        logits = []
        for name, decoder, out in zip(self.perturbations, self.decoders, self.outs):
            perturb = PERTURBATIONS[name]
            features, _ = decode(decoder, perturb(h), [perturb(s) for s in skips], emb)
            logits.append(out(features)[:, : self.num_classes].float())
        return logits


class CrossConsistencyTrainer(BaselineTrainer):
    """Supervised loss averaged over the main and auxiliary decoders on labeled images; on unlabeled
    images, the mean squared difference between the main softmax and each auxiliary softmax.

    Args:
        args, kwargs: as for ``BaselineTrainer``; ``optimizer`` covers ``auxiliary_decoders`` too.
        auxiliary_decoders: the perturbed decoders (``AuxiliaryDecoders``).
    """

    def __init__(self, *args, auxiliary_decoders: AuxiliaryDecoders, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.auxiliary_decoders = auxiliary_decoders

    def checkpoint_state(self) -> dict:
        return {**super().checkpoint_state(), "auxiliary_decoders": self.auxiliary_decoders}

    def losses(self, images: torch.Tensor, labels: torch.Tensor, num_labeled: int):
        self.auxiliary_decoders.train()
        logits, encoded, _ = self.segment_with_features(images)
        auxiliary = self.auxiliary_decoders(*encoded)
        heads = [logits, *auxiliary]
        supervised = torch.stack([self.loss_function(head[:num_labeled], labels) for head in heads]).mean()
        main = torch.softmax(logits[num_labeled:], dim=1)
        consistency = torch.stack(
            [((main - torch.softmax(aux[num_labeled:], dim=1)) ** 2).mean() for aux in auxiliary]
        ).mean()
        return logits, supervised, {"consistency": consistency}
