"""Image-level predictive uncertainty, for active learning: the mean over pixels of the normalised entropy
of the class probabilities averaged over K noise draws (0: every pixel certain, 1: uniform everywhere)."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from monai.inferers import Inferer

from .losses import normalized_entropy


def mean_normalized_entropy(probabilities: torch.Tensor) -> float:
    """The mean normalised entropy of one image's class probabilities (batch of one, classes first)."""
    return float(normalized_entropy(probabilities.float()).mean())


class UncertaintyScorer:
    """Scores an image file as ``inference.yaml`` segments it: its ``preprocessing``, the ``network`` with the
    weights of ``model_path``, and its ``inferer`` (whose ``num_draws`` is K)."""

    def __init__(self, network: torch.nn.Module, preprocessing: Callable, inferer: Inferer, model_path: str) -> None:
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"no trained model to score with: {model_path}")
        self.device = next(network.parameters()).device
        state = torch.load(model_path, map_location=self.device, weights_only=True)
        network.load_state_dict(state["model"] if set(state) == {"model"} else state)
        self.network = network.eval()
        self.preprocessing = preprocessing
        self.inferer = inferer

    def __call__(self, image_path: str) -> float:
        image = self.preprocessing({"image": image_path})["image"]
        with torch.inference_mode():
            probabilities = self.inferer(image[None].to(self.device), self.network)
        return mean_normalized_entropy(probabilities)
