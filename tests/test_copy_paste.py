import torch

from scripts.copy_paste import BidirectionalCopyPaste


def test_mix_swaps_a_box_both_ways_and_unmix_restores_the_unlabeled_images():
    torch.manual_seed(0)
    mixer = BidirectionalCopyPaste(box_fraction=0.5)
    labeled, unlabeled = torch.rand(2, 1, 8, 8, 6), torch.rand(3, 1, 8, 8, 6) + 10
    labels, pseudo = torch.ones(2, 1, 8, 8, 6), torch.full((3, 1, 8, 8, 6), 2.0)
    images, targets, box = mixer.mix(labeled, labels, unlabeled, pseudo)
    assert images.shape == (6, 1, 8, 8, 6) and targets.shape == (6, 1, 8, 8, 6)
    assert torch.equal(box.sum(dim=(1, 2, 3, 4)), torch.full((3,), 4.0 * 4 * 3))  # half of every side
    inside = box.bool()
    for k in range(3):
        l = labeled[k % 2]
        assert torch.equal(images[k][inside[k]], unlabeled[k][inside[k]])      # u pasted into l
        assert torch.equal(images[k][~inside[k]], l[~inside[k]])
        assert torch.equal(images[3 + k][inside[k]], l[inside[k]])              # l pasted into u
        assert torch.equal(targets[k][inside[k]].unique(), torch.tensor([2.0]))
        assert torch.equal(targets[3 + k][inside[k]].unique(), torch.tensor([1.0]))
    assert torch.equal(mixer.unmix(images, box), unlabeled)


def test_boxes_move():
    torch.manual_seed(0)
    boxes = BidirectionalCopyPaste().boxes(20, torch.Size([12, 12]), torch.device("cpu"))
    assert len({tuple(b.nonzero()[0].tolist()) for b in boxes}) > 1
