"""Unsupervised loss terms shared by this method and the semi-supervised baselines."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch


def cross_pseudo_supervision(loss_function: Callable, logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Each prediction is supervised by the other's argmax; the targets carry no gradient (paper Eq. 9, CPS)."""
    target_a = logits_a.argmax(dim=1, keepdim=True).detach()
    target_b = logits_b.argmax(dim=1, keepdim=True).detach()
    return loss_function(logits_a, target_b) + loss_function(logits_b, target_a)


def normalized_entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """Per-pixel entropy of class probabilities (channel dim 1) divided by ``log K``: 0 certain .. 1 uniform."""
    entropy = -(probabilities * torch.log(probabilities.clamp_min(1e-12))).sum(dim=1, keepdim=True)
    return entropy / math.log(probabilities.shape[1])


def uncertainty_masked_mse(
    student_probabilities: torch.Tensor, teacher_probabilities: torch.Tensor, certain: torch.Tensor
) -> torch.Tensor:
    """UA-MT consistency: squared difference of probabilities over the ``certain`` pixels only
    (``sum(mask * d^2) / (2 * sum(mask) + 1e-16)``, as Yu et al.)."""
    mask = certain.to(student_probabilities.dtype)
    squared = (student_probabilities - teacher_probabilities) ** 2
    return (mask * squared).sum() / (2 * mask.sum() * 1.0 + 1e-16)


def rectified_pyramid_consistency(probabilities: Sequence[torch.Tensor]) -> torch.Tensor:
    """URPC (Luo et al. 2022): each scale's probabilities against their mean, weighted per pixel by
    ``exp(-KL(mean || scale))`` (uncertain pixels count less), plus the mean KL that keeps it small."""
    mean = torch.stack(list(probabilities)).mean(dim=0)
    terms = []
    for p in probabilities:
        kl = (mean * torch.log(mean.clamp_min(1e-8) / p.clamp_min(1e-8))).sum(dim=1, keepdim=True)
        weight = torch.exp(-kl)
        squared = ((p - mean) ** 2).mean(dim=1, keepdim=True)
        terms.append((weight * squared).mean() / (weight.mean() + 1e-8) + kl.mean())
    return torch.stack(terms).mean()
