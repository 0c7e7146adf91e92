"""Transforms that MONAI lacks."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from .losses import normalised_entropy


class PredictiveEntropyd(MapTransform):
    """Per-pixel uncertainty: entropy of the class probabilities in ``keys`` divided by ``log K``
    (0 = certain, 1 = uniform), written as a one-channel map under ``output_key``."""

    def __init__(self, keys: KeysCollection, output_key: str = "uncertainty", allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.output_key = output_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[self.output_key] = normalised_entropy(d[key][None])[0]
        return d
