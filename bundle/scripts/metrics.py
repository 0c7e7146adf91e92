"""Metrics MONAI lacks: surface distances in the images' own units, Dice of volumes cut into slices, Dice of
all test pixels pooled."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import torch
from ignite.engine import Engine
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced
from monai.data import MetaTensor
from monai.handlers import ConfusionMatrix, IgniteMetricHandler
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


class PooledConfusionMatrix(ConfusionMatrix):
    """MONAI's ``ConfusionMatrix`` metric (``metric_name`` "f1 score": Dice, "threat score": Jaccard) with the
    true and false positives and negatives of every case pooled per class before the score, as the authors'
    code measures 2D datasets. Its value is the mean over the foreground classes; its details, which the
    test report reads, are the per-class scores as one row."""

    def __init__(self, metric_name: str, output_transform: Callable = lambda x: x, include_background: bool = False) -> None:
        super().__init__(include_background=include_background, metric_name=metric_name, reduction="mean_batch",
                         output_transform=output_transform)

    def compute(self) -> float:
        per_class = torch.as_tensor(self.metric_fn.aggregate()[0], dtype=torch.float64).reshape(1, -1)
        self._engine.state.metric_details[self._name] = per_class
        return per_class.nanmean().item()


class VolumeDice(Metric):
    """Dice per volume and foreground class of 2D slices stacked back into their volumes (the ACDC protocol
    of SSL4MIS and the semi-supervised literature): the output transform gives one-hot predictions, one-hot
    labels and each slice's volume id; overlaps and sizes add up over the slices of a volume. A class absent
    from a volume's label is undefined there (nan). ``compute`` is the mean over volumes of each volume's mean
    over classes, as the test report averages; the per-volume values go to ``engine.state.metric_details[name]`` (volumes x classes), as
    MONAI's metric handlers with ``save_details`` do, so the test report reads them alike."""

    def __init__(self, output_transform: Callable = lambda x: x) -> None:
        super().__init__(output_transform=output_transform)

    @reinit__is_reduced
    def reset(self) -> None:
        self._sums: dict[str, torch.Tensor] = defaultdict(lambda: 0)

    @reinit__is_reduced
    def update(self, output: Sequence) -> None:
        predictions, labels, volumes = output
        for prediction, label, volume in zip(predictions, labels, volumes):
            if volume is None:
                raise ValueError("per-volume Dice needs each test item's 'volume' (its case id); this one has none.")
            prediction, label = prediction[1:].flatten(1).double(), label[1:].flatten(1).double()
            counts = torch.stack([(prediction * label).sum(1), prediction.sum(1), label.sum(1)])
            self._sums[str(volume)] = self._sums[str(volume)] + counts.cpu()

    def details(self) -> torch.Tensor:
        """Dice per volume (sorted by id) and foreground class."""
        if not self._sums:
            raise ValueError("per-volume Dice of an empty test set.")
        counts = torch.stack([self._sums[volume] for volume in sorted(self._sums)])
        overlap, predicted, labelled = counts.unbind(1)
        dice = 2 * overlap / (predicted + labelled).clamp_min(1)
        return dice.masked_fill(labelled == 0, float("nan"))

    def compute(self) -> float:
        return self.details().nanmean(dim=1).nanmean().item()

    def completed(self, engine: Engine, name: str) -> None:
        super().completed(engine, name)
        engine.state.metric_details[name] = self.details()
