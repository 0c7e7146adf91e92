"""Dictionary transforms that MONAI lacks (MONAI's ``MapTransform``): checks of the image's channel count,
dimensions and values, a warning when resizing removes a class from a mask, and the per-voxel predictive
entropy of the averaged noise draws (the uncertainty map of the paper's Fig. 3)."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Resize

from .losses import normalized_entropy

logger = logging.getLogger(__name__)


def _name(data: Mapping, key: Hashable) -> str:
    """The file that ``data[key]`` was read from, or the key."""
    return data[key].meta.get("filename_or_obj", key) if isinstance(data[key], MetaTensor) else str(key)


class WarnVanishingClassesd(MapTransform):
    """Warns, naming the file, when resizing a (channel-first) mask in ``keys`` to ``spatial_size`` (nearest
    neighbour, as the training transforms do) removes a class it holds: the image would otherwise train, and
    be scored, as if that structure were absent. Give it before the resize; the data pass unchanged."""

    def __init__(self, keys: KeysCollection, spatial_size: Sequence[int], allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.spatial_size = list(spatial_size)
        self.resize = Resize(spatial_size, mode="nearest")

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> Mapping[Hashable, torch.Tensor]:
        for key in self.key_iterator(data):
            mask = torch.as_tensor(data[key]).as_subclass(torch.Tensor)
            lost = set(mask.unique().tolist()) - set(torch.as_tensor(self.resize(mask)).unique().tolist())
            if lost:
                logger.warning(
                    f"{_name(data, key)}: resized to {self.spatial_size}, its mask loses class(es) "
                    f"{sorted(int(c) for c in lost)}, which then count as absent in training and scoring; a "
                    "larger --spatial_size keeps them."
                )
        return data


class PredictiveEntropyd(MapTransform):
    """Per-pixel uncertainty: entropy of the class probabilities in ``keys`` divided by ``log K``
    (0 = certain, 1 = uniform), written as a one-channel map under ``output_key``."""

    def __init__(self, keys: KeysCollection, output_key: str = "uncertainty", allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.output_key = output_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[self.output_key] = normalized_entropy(d[key][None])[0]
        return d


class CheckChannelsd(MapTransform):
    """Stops with an error naming the file when a (channel-first) image in ``keys`` does not have ``channels``
    channels, and says which option to set: a network built for the wrong number of channels would
    otherwise fail later with numbers that the user never set. With ``spatial_dims``, a 2D image given to a
    3D network, or a volume to a 2D one, is refused naming the overlay that fits."""

    def __init__(
        self, keys: KeysCollection, channels: int, option: str = "image_channels", spatial_dims: int | None = None
    ) -> None:
        super().__init__(keys)
        self.channels = int(channels)
        self.option = option
        self.spatial_dims = spatial_dims

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> Mapping[Hashable, torch.Tensor]:
        for key in self.key_iterator(data):
            dims = data[key].ndim - 1
            if self.spatial_dims is not None and dims != self.spatial_dims:
                fix = ("for volumes, add 'bundle/configs/datasets/volumes.yaml' after train.yaml or inference.yaml"
                       if dims == 3 else "for 2D images, leave 'bundle/configs/datasets/volumes.yaml' out")
                raise ValueError(f"{_name(data, key)} is a {dims}D image, but the network is "
                                 f"{self.spatial_dims}D: {fix}.")
            found = data[key].shape[0]
            if found != self.channels:
                raise ValueError(
                    f"{_name(data, key)} has {found} channel(s), but {self.option} is {self.channels}: "
                    f"set --{self.option} {found} (or convert the images)."
                )
        return data


class CheckMinimumSized(MapTransform):
    """Stops with an error naming the file when an image in ``keys`` (channel first) has a side shorter than
    ``minimum``: a mask with a side of one pixel cannot be saved as a picture."""

    def __init__(self, keys: KeysCollection, minimum: int = 2, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.minimum = minimum

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> Mapping[Hashable, torch.Tensor]:
        for key in self.key_iterator(data):
            size = tuple(data[key].shape[1:])
            if min(size) < self.minimum:
                raise ValueError(f"{_name(data, key)} is {' x '.join(map(str, size))} pixels: too small to segment "
                                 f"(at least {self.minimum} per side).")
        return data


class CheckFinited(MapTransform):
    """Stops with an error naming the file when an image in ``keys`` holds NaN or infinite values: one such
    value makes the whole prediction background, with no other sign of it."""

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> Mapping[Hashable, torch.Tensor]:
        for key in self.key_iterator(data):
            image = torch.as_tensor(data[key])
            if image.is_floating_point() and not torch.isfinite(image).all():
                raise ValueError(
                    f"{_name(data, key)} has {int((~torch.isfinite(image)).sum())} NaN or infinite values: its mask would be "
                    "meaningless. Fix or remove the image."
                )
        return data
