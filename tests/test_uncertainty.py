"""Image-level uncertainty for active learning, scored as inference.yaml segments: a model whose mask logits
are all equal is maximally uncertain (1), one that always names the background is certain (0)."""

import os

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from PIL import Image

from scripts.uncertainty import UncertaintyScorer, mean_normalized_entropy

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bundle", "configs")


def test_mean_normalized_entropy_of_certain_and_uniform_probabilities():
    uniform = torch.full((1, 4, 5, 5), 0.25)
    certain = torch.zeros((1, 4, 5, 5))
    certain[:, 2] = 1
    half = torch.cat([uniform[..., :2], certain[..., 2:]], dim=-1)  # 2 of 5 columns uniform
    assert mean_normalized_entropy(uniform) == pytest.approx(1.0)
    assert mean_normalized_entropy(certain) == pytest.approx(0.0, abs=1e-6)
    assert mean_normalized_entropy(half) == pytest.approx(0.4)


@pytest.mark.parametrize("class0_bias, expected", [(0.0, 1.0), (50.0, 0.0)])
def test_scorer_reads_the_bundle_config_and_weights(tmp_path, class0_bias, expected):
    parser = ConfigParser()
    parser.read_config(os.path.join(CONFIGS, "inference.yaml"))
    network = parser.get_parsed_content("network_def")
    out = network.body.out[2].conv  # the last convolution: mask logits in its first num_classes channels
    torch.nn.init.zeros_(out.weight)
    torch.nn.init.zeros_(out.bias)
    out.bias.data[0] = class0_bias
    torch.save(network.state_dict(), tmp_path / "model.pt")
    image = tmp_path / "image.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48)).astype(np.uint8)).save(image)
    scoring = ConfigParser()  # as the MONAI Label app builds it: inference.yaml's uncertainty_scorer
    scoring.read_config(os.path.join(CONFIGS, "inference.yaml"))
    scoring.update({"model_path": str(tmp_path / "model.pt"), "inference_draws": 3, "device": torch.device("cpu")})
    scorer = scoring.get_parsed_content("uncertainty_scorer")
    assert isinstance(scorer, UncertaintyScorer) and scorer.inferer.num_draws == 3
    assert scorer(str(image)) == pytest.approx(expected, abs=1e-4)
    with pytest.raises(FileNotFoundError, match="no trained model to score with"):
        UncertaintyScorer(network, scorer.preprocessing, scorer.inferer, str(tmp_path / "missing.pt"))
