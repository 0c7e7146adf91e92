"""Surface distances in the images' own units."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from ignite.metrics.metric import reinit__is_reduced
from monai.data import MetaTensor
from monai.handlers import IgniteMetricHandler
from monai.metrics import CumulativeIterationMetric


class PhysicalSurfaceDistance(IgniteMetricHandler):
    """A MONAI surface-distance metric (``HausdorffDistanceMetric``, ``SurfaceDistanceMetric``) given each
    prediction's voxel spacing from its affine, so that distances come in the image's physical unit (mm for
    NIfTI, NRRD and the converted LA volumes) rather than in voxels. Tensors without an affine are measured
    in voxels."""

    def __init__(
        self, metric_fn: CumulativeIterationMetric, output_transform: Callable = lambda x: x, save_details: bool = True
    ) -> None:
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)

    @reinit__is_reduced
    def update(self, output: Sequence[Sequence[torch.Tensor]]) -> None:
        predictions, targets = output
        for prediction, target in zip(predictions, targets):  # one image each: spacing differs per image
            spacing = prediction.pixdim.tolist() if isinstance(prediction, MetaTensor) else None
            self.metric_fn(prediction[None], target[None], spacing=spacing)
