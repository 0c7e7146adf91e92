"""Bidirectional copy-paste between labeled and unlabeled images (Bai et al., BCP, CVPR 2023), 2D or 3D."""

from __future__ import annotations

import torch


class BidirectionalCopyPaste:
    """Pairs every unlabeled image ``u`` with a labeled image ``l`` (cycling through the labeled batch) and
    draws one box ``B`` per pair, ``box_fraction`` of every spatial side, placed uniformly. Each pair gives
    two mixed images with their targets:

    * ``u`` pasted into ``l``: ``u B + l (1 - B)``, target ``p B + y (1 - B)``;
    * ``l`` pasted into ``u``: ``l B + u (1 - B)``, target ``y B + p (1 - B)``;

    with ``y`` the label of ``l`` and ``p`` a pseudo-label of ``u``. ``unmix`` puts the predictions for the
    two mixed images of a pair back together into one prediction for ``u``.
    """

    def __init__(self, box_fraction: float = 2 / 3) -> None:
        if not 0 < box_fraction < 1:
            raise ValueError(f"box_fraction must be in (0, 1), got {box_fraction}.")
        self.box_fraction = box_fraction

    def boxes(self, count: int, spatial_shape: torch.Size, device: torch.device) -> torch.Tensor:
        """``count`` masks of shape ``(count, 1, *spatial_shape)``, 1 inside each pair's box."""
        boxes = torch.zeros((count, 1, *spatial_shape), device=device)
        for box in boxes:
            region = [slice(None)]
            for size in spatial_shape:
                side = max(1, round(size * self.box_fraction))
                start = int(torch.randint(0, size - side + 1, ()).item())
                region.append(slice(start, start + side))
            box[tuple(region)] = 1.0
        return boxes

    def mix(
        self, labeled: torch.Tensor, labels: torch.Tensor, unlabeled: torch.Tensor, pseudo_labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ``2 N_u`` mixed images (all ``u``-into-``l`` first, then all ``l``-into-``u``), their
        targets, and the boxes ``(N_u, 1, ...)`` that ``unmix`` needs."""
        pairs = torch.arange(unlabeled.shape[0], device=unlabeled.device) % labeled.shape[0]
        l, y = labeled[pairs], labels[pairs].to(pseudo_labels.dtype)
        box = self.boxes(unlabeled.shape[0], unlabeled.shape[2:], unlabeled.device)
        images = torch.cat([unlabeled * box + l * (1 - box), l * box + unlabeled * (1 - box)])
        inside = box.bool()
        targets = torch.cat([torch.where(inside, pseudo_labels, y), torch.where(inside, y, pseudo_labels)])
        return images, targets, box

    @staticmethod
    def unmix(predictions: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        """The prediction for each unlabeled image, from the predictions for its two mixed images."""
        u_into_l, l_into_u = predictions.split(box.shape[0])
        return u_into_l * box + l_into_u * (1 - box)
