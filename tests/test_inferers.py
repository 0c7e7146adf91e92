import pytest
import torch

from helpers import tiny_network
from scripts.inferers import MaskPathwayInferer
from scripts.transforms import PredictiveEntropyd


class TimestepSpy(torch.nn.Module):
    def __init__(self, network):
        super().__init__()
        self.network, self.num_classes, self.timesteps = network, network.num_classes, []

    def forward(self, image, noisy_mask, timesteps):
        self.timesteps.append(timesteps.clone())
        return self.network(image, noisy_mask, timesteps)


def test_fixed_timestep_and_deterministic_output(scheduler):
    net = TimestepSpy(tiny_network()).eval()
    inferer = MaskPathwayInferer(scheduler, timestep=250, num_draws=3)
    image = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        first, second = inferer(image, net), inferer(image, net)
    assert all(torch.equal(t, torch.full((2,), 250)) for t in net.timesteps)
    assert len(net.timesteps) == 6
    assert torch.equal(first, second)
    assert torch.allclose(first.sum(1), torch.ones(2, 16, 16), atol=1e-5)


def test_random_timestep_per_image_and_draw_is_repeatable(scheduler):
    net = TimestepSpy(tiny_network()).eval()
    inferer = MaskPathwayInferer(scheduler, timestep="random", num_draws=2)
    image = torch.rand(8, 1, 16, 16)
    with torch.no_grad():
        first, second = inferer(image, net), inferer(image, net)
    drawn = torch.stack(net.timesteps)  # 2 calls x 2 draws, 8 images each
    assert drawn.min() >= 0 and drawn.max() < scheduler.num_train_timesteps
    assert len(torch.unique(drawn[0])) > 1 and not torch.equal(drawn[0], drawn[1])
    assert torch.equal(drawn[:2], drawn[2:]) and torch.equal(first, second)


def test_draws_average_different_noise(scheduler):
    net = tiny_network().eval()
    image = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        one = MaskPathwayInferer(scheduler, timestep=999, num_draws=1)(image, net)
        other_seed = MaskPathwayInferer(scheduler, timestep=999, num_draws=1, seed=1)(image, net)
        four = MaskPathwayInferer(scheduler, timestep=999, num_draws=4)(image, net)
    assert not torch.allclose(one, other_seed)
    assert not torch.allclose(one, four)


def test_sliding_window_with_a_partial_last_window_batch(scheduler):
    net = tiny_network().eval()
    inferer = MaskPathwayInferer(scheduler, timestep=0, roi_size=(8, 8), sw_batch_size=4)
    with torch.no_grad():
        out = inferer(torch.rand(1, 1, 20, 20), net)  # 5 x 5 windows: the last batch holds one window
    assert out.shape == (1, 3, 20, 20)
    assert torch.allclose(out.sum(1), torch.ones(1, 20, 20), atol=1e-4)


def test_invalid_settings_are_rejected(scheduler):
    with pytest.raises(ValueError):
        MaskPathwayInferer(scheduler, timestep=1000)
    with pytest.raises(ValueError):
        MaskPathwayInferer(scheduler, timestep="fixed")
    with pytest.raises(ValueError):
        MaskPathwayInferer(scheduler, num_draws=0)


def test_predictive_entropy():
    probabilities = torch.stack([torch.tensor([[1.0, 0.5]]), torch.tensor([[0.0, 0.5]])])  # (2 classes, 1, 2)
    out = PredictiveEntropyd(keys="pred")({"pred": probabilities})["uncertainty"]
    assert out.shape == (1, 1, 2)
    assert out[0, 0, 0].item() == pytest.approx(0.0, abs=1e-6)
    assert out[0, 0, 1].item() == pytest.approx(1.0)
