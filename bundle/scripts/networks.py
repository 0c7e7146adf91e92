"""Dual-pathway conditional diffusion UNet built on MONAI's ``DiffusionModelUNet``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from monai.networks.nets import DiffusionModelUNet
from torch import nn

from .unet_stages import decode, encode

MASK_PATHWAY, IMAGE_PATHWAY = 0, 1
PATHWAYS = {"mask": "mask_pathway", "image": "image_pathway", "mask_features": "mask_features"}  # forward(pathway=)


def unwrap(network: nn.Module) -> nn.Module:
    """The network inside a ``DistributedDataParallel`` or ``DataParallel`` wrapper, or ``network`` itself."""
    return network.module if isinstance(network, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else network


def reinitialise_convolutions(module: nn.Module) -> None:
    """Give every convolution in ``module`` PyTorch's default random initialisation (MONAI zero-initialises
    the output convolution of ``DiffusionModelUNet``)."""
    for conv in module.modules():
        if isinstance(conv, (nn.Conv2d, nn.Conv3d)):
            conv.reset_parameters()


class ConstantSegmenter(nn.Module):
    """Logits that give every pixel the class ``label``, whatever the inputs (the mask pathway's signature):
    a trivial reference that a trained model has to beat.

    Args:
        num_classes: the classes, background included.
        label: the class of every pixel.
    """

    def __init__(self, num_classes: int, label: int = 1) -> None:
        super().__init__()
        if not 0 <= label < num_classes:
            raise ValueError(f"label must be a class in [0, {num_classes - 1}], got {label}.")
        self.num_classes = num_classes
        # a frozen parameter, so that the workflow's optimizers can be built around it as around any network
        logits = nn.functional.one_hot(torch.tensor(label), num_classes).float()
        self.logits = nn.Parameter(logits, requires_grad=False)

    def forward(self, image: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        # added to zeros of the image's own type, so that a MetaTensor's metadata (and its inverse) carries over
        return torch.zeros_like(image[:, :1]) + self.logits.view(1, -1, *[1] * (image.ndim - 2))


class PathwayInput(NamedTuple):
    """What the mask pathway's UNet is called with: ``unet(x, timesteps, class_labels=pathway_labels)``."""

    unet: DiffusionModelUNet
    x: torch.Tensor                          # image and noisy mask, concatenated on the channels
    pathway_labels: torch.Tensor | None      # the shared body's pathway embedding labels (None: own body)


class DualPathwayDiffusionUNet(nn.Module):
    """A conditional diffusion UNet with a mask pathway and an image pathway.

    * mask pathway ``f_m(i, m_t, t)`` (``forward``, ``mask_pathway``): clean image + noisy mask -> clean mask
      logits (``num_classes``);
    * image pathway ``f_i(i_t, m, t)`` (``forward(..., pathway="image")``, ``image_pathway``): noisy image +
      clean mask -> predicted noise.

    With ``shared_body=True`` (default) one UNet serves both pathways: its input is always
    ``[image slot, mask slot]``, its output ``[mask logits, noise]``, and a learned pathway embedding
    (MONAI's class embedding) is added to the time embedding to tell the pathways apart. With
    ``shared_body=False`` each pathway has its own UNet, as in the authors' code.

    MONAI zero-initialises the output convolution, so two fresh networks would predict exactly the
    same (uniform) mask; the output convolution is re-initialised here so that differently seeded
    networks disagree from the first step, as cross pseudo supervision needs. Both pathways return float32,
    also under autocast, so that losses and softmaxes are computed in full precision.
    """

    def __init__(
        self,
        spatial_dims: int,
        image_channels: int,
        num_classes: int,
        channels: Sequence[int] = (32, 64, 128, 256),
        attention_levels: Sequence[bool] = (False, False, False, False),
        num_res_blocks: Sequence[int] | int = 1,
        norm_num_groups: int = 16,
        num_head_channels: Sequence[int] | int = 32,
        shared_body: bool = True,
    ) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.image_channels = image_channels
        self.num_classes = num_classes
        self.shared_body = shared_body
        unet_args = dict(
            spatial_dims=spatial_dims,
            in_channels=image_channels + num_classes,
            channels=channels,
            attention_levels=attention_levels,
            num_res_blocks=num_res_blocks,
            norm_num_groups=norm_num_groups,
            num_head_channels=num_head_channels,
        )
        if shared_body:
            self.body = DiffusionModelUNet(out_channels=num_classes + image_channels, num_class_embeds=2, **unet_args)
            unets = [self.body]
        else:
            self.mask_body = DiffusionModelUNet(out_channels=num_classes, **unet_args)
            self.image_body = DiffusionModelUNet(out_channels=image_channels, **unet_args)
            unets = [self.mask_body, self.image_body]
        for unet in unets:
            reinitialise_convolutions(unet.out)

    def forward(self, *inputs: torch.Tensor, pathway: str = "mask"):
        """``mask_pathway(*inputs)`` (the model's one-input form ``forward(image)`` included), or the pathway
        named: ``"image"`` (``image_pathway``) or ``"mask_features"`` (``mask_features``). Trainers
        call every pathway through ``forward``, so that ``DistributedDataParallel`` averages the gradients of
        all of them."""
        if pathway not in PATHWAYS:
            raise ValueError(f"pathway must be one of {list(PATHWAYS)}, got {pathway!r}.")
        return getattr(self, PATHWAYS[pathway])(*inputs)

    def mask_pathway(
        self, image: torch.Tensor, noisy_mask: torch.Tensor | None = None, timesteps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mask pathway: predict the clean mask logits from the image and a noisy mask at ``timesteps``.

        Given the image alone, the mask is all zeros (the mean of the pure-noise mask) at t = 0: the one-input
        form that ``verify_net_in_out``, TorchScript and ONNX exports call. It is deterministic; at t = 0 a
        pure-noise mask has a standard deviation of only sqrt(beta_1) = 0.01.
        """
        if noisy_mask is None:
            noisy_mask = image.new_zeros((image.shape[0], self.num_classes, *image.shape[2:]))
        if timesteps is None:
            timesteps = torch.zeros(image.shape[0], dtype=torch.long, device=image.device)
        body = self.mask_pathway_body(image, noisy_mask)
        return body.unet(body.x, timesteps, class_labels=body.pathway_labels)[:, : self.num_classes].float()

    def mask_features(
        self, image: torch.Tensor, noisy_mask: torch.Tensor, timesteps: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, list[torch.Tensor], torch.Tensor], list[torch.Tensor]]:
        """The mask pathway through its stages, for heads on its features: the logits (exactly
        ``mask_pathway``'s), the encoder's (bottleneck, skips, embedding) and the features entering each
        decoder up block."""
        body = self.mask_pathway_body(image, noisy_mask)
        h, skips, emb = encode(body.unet, body.x, timesteps, body.pathway_labels)
        features, levels = decode(body.unet.up_blocks, h, skips, emb)
        return body.unet.out(features)[:, : self.num_classes].float(), (h, skips, emb), levels

    @property
    def mask_unet(self) -> DiffusionModelUNet:
        """The UNet of the mask pathway; its first ``num_classes`` output channels are the mask logits."""
        return self.body if self.shared_body else self.mask_body

    def mask_pathway_body(self, image: torch.Tensor, noisy_mask: torch.Tensor) -> PathwayInput:
        """The mask pathway's UNet, input and pathway labels, for heads on its features."""
        x = torch.cat([image, noisy_mask], dim=1)
        return PathwayInput(self.mask_unet, x, self._pathway_labels(MASK_PATHWAY, x) if self.shared_body else None)

    def image_pathway(self, noisy_image: torch.Tensor, mask: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """Image pathway: predict the noise in ``noisy_image`` given a clean (soft) mask at ``timesteps``."""
        x = torch.cat([noisy_image, mask], dim=1)
        if not self.shared_body:
            return self.image_body(x, timesteps).float()
        out = self.body(x, timesteps, class_labels=self._pathway_labels(IMAGE_PATHWAY, x))
        return out[:, self.num_classes :].float()

    @staticmethod
    def _pathway_labels(pathway: int, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0],), pathway, dtype=torch.long, device=x.device)
