"""URPC: uncertainty rectified pyramid consistency (Luo et al., MedIA 2022), in the SSL4MIS form."""

from __future__ import annotations

import torch
from torch import nn

from ..losses import rectified_pyramid_consistency
from ..networks import DualPathwayDiffusionUNet
from .base import BaselineTrainer


class PyramidHeads(nn.Module):
    """1x1 convolution heads on the mask pathway's decoder features entering its first ``num_heads`` up
    blocks (coarse to fine: 1/8, 1/4, 1/2 of the input size for four levels), upsampled to the input size."""

    def __init__(self, network: DualPathwayDiffusionUNet, num_heads: int = 3) -> None:
        super().__init__()
        unet = network.mask_unet
        if not 1 <= num_heads < len(unet.up_blocks):
            raise ValueError(f"num_heads must be in [1, {len(unet.up_blocks) - 1}], got {num_heads}.")
        reversed_channels = list(reversed(unet.block_out_channels))
        in_channels = [reversed_channels[0]] + reversed_channels[:-1]  # features entering each up block
        conv = nn.Conv3d if network.spatial_dims == 3 else nn.Conv2d
        self.heads = nn.ModuleList(conv(c, network.num_classes, kernel_size=1) for c in in_channels[:num_heads])
        self.mode = "trilinear" if network.spatial_dims == 3 else "bilinear"

    def forward(self, levels: list[torch.Tensor], size: torch.Size) -> list[torch.Tensor]:
        return [
            nn.functional.interpolate(head(level).float(), size=size, mode=self.mode, align_corners=False)
            for head, level in zip(self.heads, levels)
        ]


class PyramidConsistencyTrainer(BaselineTrainer):
    """Supervised loss averaged over the main output and every pyramid head on labeled images; on
    unlabeled images, the uncertainty-rectified consistency of all scales with their mean.

    Args:
        args, kwargs: as for ``BaselineTrainer``; ``optimizer`` covers ``pyramid_heads`` too.
        pyramid_heads: the heads on the decoder's coarser scales (``PyramidHeads``).
    """

    def __init__(self, *args, pyramid_heads: PyramidHeads, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pyramid_heads = pyramid_heads

    def checkpoint_state(self) -> dict:
        return {**super().checkpoint_state(), "pyramid_heads": self.pyramid_heads}

    def losses(self, images: torch.Tensor, labels: torch.Tensor, num_labeled: int):
        self.pyramid_heads.train()
        logits, _, levels = self.segment_with_features(images)
        scales = self.pyramid_heads(levels, images.shape[2:])
        heads = [logits, *scales]
        supervised = torch.stack([self.loss_function(head[:num_labeled], labels) for head in heads]).mean()
        probabilities = [torch.softmax(head[num_labeled:], dim=1) for head in heads]
        return logits, supervised, {"consistency": rectified_pyramid_consistency(probabilities)}
