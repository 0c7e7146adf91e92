"""MONAI's ``DiffusionModelUNet`` forward split into encoder and decoder stages, for heads that need its
features (auxiliary decoders, deep supervision). ``decode(encode(...))`` followed by ``unet.out`` is
exactly ``unet(x, timesteps, class_labels=...)``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import DiffusionModelUNet
from monai.networks.nets.diffusion_model_unet import get_timestep_embedding
from torch import nn


def encode(
    unet: DiffusionModelUNet, x: torch.Tensor, timesteps: torch.Tensor, class_labels: torch.Tensor | None = None
) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """Bottleneck features, skip connections (shallow to deep) and the time (+ class) embedding."""
    emb = unet.time_embed(get_timestep_embedding(timesteps, unet.block_out_channels[0]).to(dtype=x.dtype))
    if unet.num_class_embeds is not None:
        emb = emb + unet.class_embedding(class_labels).to(dtype=x.dtype)
    h = unet.conv_in(x)
    skips = [h]
    for block in unet.down_blocks:
        h, residuals = block(hidden_states=h, temb=emb, context=None)
        skips.extend(residuals)
    return unet.middle_block(hidden_states=h, temb=emb, context=None), skips, emb


def decode(
    up_blocks: nn.ModuleList, h: torch.Tensor, skips: Sequence[torch.Tensor], emb: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The decoder's last features and the features entering each up block (coarse to fine)."""
    skips, levels = list(skips), []
    for block in up_blocks:
        levels.append(h)
        count = len(block.resnets)
        h = block(hidden_states=h, res_hidden_states_list=skips[-count:], temb=emb, context=None)
        skips = skips[:-count]
    return h, levels
