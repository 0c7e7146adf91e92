import pytest
import torch

from helpers import tiny_network


@pytest.mark.parametrize("spatial_dims, size", [(2, (16, 16)), (3, (8, 8, 8)), (3, (16, 12, 8))])
@pytest.mark.parametrize("shared_body", [True, False])
def test_pathway_shapes(spatial_dims, size, shared_body):
    net = tiny_network(spatial_dims=spatial_dims, image_channels=2, num_classes=4, shared_body=shared_body)
    image, mask = torch.randn(3, 2, *size), torch.randn(3, 4, *size)
    t = torch.tensor([0, 500, 999])
    assert net(image, mask, t).shape == (3, 4, *size)
    assert net.image_pathway(image, mask, t).shape == (3, 2, *size)


def test_shared_body_has_half_the_parameters():
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    shared, separate = count(tiny_network(shared_body=True)), count(tiny_network(shared_body=False))
    assert 0.45 < shared / separate < 0.55


def test_pathways_differ_in_the_shared_body():
    net = tiny_network(num_classes=1, image_channels=1)
    x, m, t = torch.randn(2, 1, 16, 16), torch.randn(2, 1, 16, 16), torch.tensor([10, 10])
    # same input tensors in both slots: only the pathway embedding and output slice tell them apart
    assert not torch.allclose(net(x, m, t), net.image_pathway(x, m, t))


def test_fresh_networks_are_not_zero_and_differ_by_seed():
    a, b = tiny_network(seed=0), tiny_network(seed=1)
    x, m, t = torch.randn(2, 1, 16, 16), torch.randn(2, 3, 16, 16), torch.tensor([3, 3])
    out_a, out_b = a(x, m, t), b(x, m, t)
    assert out_a.abs().max() > 0
    assert (out_a.argmax(1) != out_b.argmax(1)).float().mean() > 0.05
