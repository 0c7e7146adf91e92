import pytest
import torch

from helpers import spy_on_image_pathway, tiny_network
from scripts.diffusion import ImageReconstruction
from scripts.teacher_pretraining import TeacherPretrainer


def make_trainer(network, scheduler, batches, image_input="noise", space="image"):
    return TeacherPretrainer(
        device="cpu", max_epochs=1, train_data_loader=batches, network=network,
        optimizer=torch.optim.Adam(network.parameters(), 1e-3), noise_scheduler=scheduler,
        reconstruction=ImageReconstruction(scheduler, space=space), image_input=image_input,
    )


def test_cycle_sends_gradient_into_the_mask_pathway(scheduler):
    network = tiny_network(shared_body=False)
    trainer = make_trainer(network, scheduler, [{"image": torch.rand(4, 1, 16, 16) * 2 - 1}])
    trainer.run()
    mask_grads = [p.grad for p in network.mask_body.parameters()]
    assert all(g is not None for g in mask_grads)
    assert sum(g.abs().sum().item() for g in mask_grads) > 0
    output = trainer.state.output
    assert output["pred"].shape == (4, 3, 16, 16) and output["reconstruction"].shape == (4, 1, 16, 16)
    assert torch.isfinite(output["loss"])


def test_mask_pathway_gets_no_gradient_without_the_cycle(scheduler):
    # control for the test above: with the mask detached, the same loss leaves the mask pathway untouched
    network = tiny_network(shared_body=False)
    from scripts.diffusion import mask_from_noise

    images = torch.rand(2, 1, 16, 16)
    t = torch.tensor([100, 200])
    mask = mask_from_noise(network, scheduler, images, t)
    loss, _ = ImageReconstruction(scheduler)(network, images, torch.softmax(mask, 1).detach(), t, from_pure_noise=True)
    loss.mean().backward()
    assert all(p.grad is None for p in network.mask_body.parameters())


def test_pretraining_refuses_labels(scheduler):
    batch = {"image": torch.rand(2, 1, 16, 16), "label": torch.zeros(2, 1, 16, 16)}
    with pytest.raises(ValueError, match="label"):
        make_trainer(tiny_network(), scheduler, [batch]).run()


def test_hard_masks_are_one_hot_with_a_straight_through_gradient(scheduler):
    network = tiny_network(shared_body=False)
    seen = spy_on_image_pathway(network)
    trainer = make_trainer(network, scheduler, [{"image": torch.rand(2, 1, 16, 16)}])
    trainer.hard_masks = True
    trainer.run()
    assert set(seen[0].unique().tolist()) == {0.0, 1.0} and torch.equal(seen[0].sum(1), torch.ones(2, 16, 16))
    assert sum(p.grad.abs().sum().item() for p in network.mask_body.parameters()) > 0


def test_noised_image_input_carries_the_image_and_pure_noise_does_not(scheduler):
    for image_input, depends_on_image in (("noise", False), ("noised", True)):
        inputs = []
        for images in (torch.zeros(2, 1, 16, 16), torch.ones(2, 1, 16, 16)):
            network = tiny_network()
            original = network.image_pathway
            network.image_pathway = lambda x, m, t, original=original: inputs.append(x) or original(x, m, t)
            torch.manual_seed(0)
            make_trainer(network, scheduler, [{"image": images}], image_input=image_input, space="noise").run()
        assert (not torch.allclose(inputs[0], inputs[1])) == depends_on_image
