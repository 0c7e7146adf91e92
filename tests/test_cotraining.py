import pytest
import torch
from monai.losses import DiceCELoss

from helpers import spy_on_image_pathway, tiny_network
from scripts.cotraining import CoTrainer
from scripts.diffusion import ImageReconstruction
from scripts.losses import cross_pseudo_supervision
from scripts.ramps import LinearRamp

CE = DiceCELoss(to_onehot_y=True, softmax=True, lambda_dice=0.0)


class RecordingLoss:
    def __init__(self):
        self.calls = []

    def __call__(self, logits, target):
        self.calls.append((logits.detach().clone(), target.detach().clone()))
        return CE(logits, target)


def make_trainer(scheduler, rounds=1, reset_rounds=False, loss=CE, max_epochs=1, num_batches=1, **options):
    student, teacher = tiny_network(seed=1), tiny_network(seed=2)
    labeled = [{"image": torch.rand(2, 1, 16, 16), "label": torch.randint(0, 3, (2, 1, 16, 16)).float()}]
    unlabeled = [{"image": torch.rand(3, 1, 16, 16)} for _ in range(num_batches)]
    return CoTrainer(
        device="cpu", max_epochs=max_epochs, train_data_loader=unlabeled, labeled_data_loader=labeled,
        network=student, optimizer=torch.optim.Adam(student.parameters(), 1e-3), teacher=teacher,
        teacher_optimizer=torch.optim.Adam(teacher.parameters(), 1e-3), noise_scheduler=scheduler,
        loss_function=loss, consistency_weight=LinearRamp(5.0, max_epochs), rounds=rounds,
        reset_rounds=reset_rounds, reconstruction=ImageReconstruction(scheduler), **options,
    )


def test_cps_targets_carry_no_gradient():
    a = torch.randn(2, 3, 8, 8, requires_grad=True)
    b = torch.randn(2, 3, 8, 8, requires_grad=True)
    cross_pseudo_supervision(CE, a, b).backward()
    a_alone = a.detach().clone().requires_grad_()
    CE(a_alone, b.argmax(1, keepdim=True)).backward()
    assert torch.allclose(a.grad, a_alone.grad)  # b's term adds nothing to a's gradient


def test_align_target_is_label_or_student_argmax(scheduler):
    loss = RecordingLoss()
    trainer = make_trainer(scheduler, rounds=1, loss=loss)
    trainer.run()
    # calls: supervised (teacher, student), CPS (two), align (round 1)
    assert len(loss.calls) == 5
    _, align_target = loss.calls[-1]
    labels = trainer.labeled_data_loader[0]["label"]
    student_argmax = trainer.state.output["pred"].argmax(1, keepdim=True)
    assert torch.equal(align_target[:2].float(), labels)
    assert torch.equal(align_target[2:], student_argmax[2:])
    assert not torch.equal(align_target[:2], student_argmax[:2])


def test_rounds_are_iterative_by_default_and_reset_on_request(scheduler):
    for reset, expect_equal in ((False, False), (True, True)):
        trainer = make_trainer(scheduler, rounds=3, reset_rounds=reset)
        masks = spy_on_image_pathway(trainer.teacher)
        trainer.run()
        assert len(masks) == 3
        teacher_mask = torch.softmax(trainer.state.output["teacher_pred"], 1)
        assert torch.allclose(masks[0], teacher_mask, atol=1e-5)  # round 1 starts from the teacher's mask
        assert torch.allclose(masks[1], masks[0], atol=1e-5) == expect_equal
        assert torch.allclose(masks[2], masks[0], atol=1e-5) == expect_equal


def test_both_networks_learn_and_lambda_follows_the_ramp(scheduler):
    trainer = make_trainer(scheduler, rounds=2, max_epochs=2, num_batches=2)
    before = [p.detach().clone() for p in (*trainer.network.parameters(), *trainer.teacher.parameters())]
    trainer.run()
    after = [*trainer.network.parameters(), *trainer.teacher.parameters()]
    n_student = len(list(trainer.network.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before[:n_student], after[:n_student]))
    assert any(not torch.equal(a, b) for a, b in zip(before[n_student:], after[n_student:]))
    scalars = trainer.state.output["scalars"]
    assert scalars["lambda"] == 5.0  # epoch 2 of 2
    assert all(torch.isfinite(torch.tensor(v)) for v in scalars.values())


def test_zero_rounds_is_plain_teacher_student_cps(scheduler):
    trainer = make_trainer(scheduler, rounds=0)
    trainer.run()
    assert "loss/align" not in trainer.state.output["scalars"]
    assert trainer.state.output["reconstruction"] is None


def _gradient_reaches(trainer, term, parameters):
    torch.manual_seed(0)
    images, labels, num_labeled = trainer.mixed_batch(trainer.data_loader[0])
    losses = trainer.losses(images, labels, num_labeled)
    trainer.teacher.zero_grad(set_to_none=True)
    ({**losses.fixed, **losses.weighted}[term]).backward()
    return sum(p.grad.abs().sum().item() for p in parameters if p.grad is not None) > 0


def test_detached_rounds_keep_each_loss_on_its_own_pathway(scheduler):
    for detach in (False, True):
        trainer = make_trainer(scheduler, rounds=2, detach_rounds=detach)
        trainer.teacher = tiny_network(shared_body=False, seed=2)
        trainer.state.device = torch.device("cpu")
        image_pathway, mask_pathway = trainer.teacher.image_body.parameters(), trainer.teacher.mask_body.parameters()
        # align trains the mask pathway; only without detach does it reach the image pathway too
        assert _gradient_reaches(trainer, "align", trainer.teacher.mask_body.parameters())
        assert _gradient_reaches(trainer, "align", image_pathway) == (not detach)
        assert _gradient_reaches(trainer, "reconstruction", trainer.teacher.image_body.parameters())
        assert _gradient_reaches(trainer, "reconstruction", mask_pathway) == (not detach)


def test_unlabeled_mode_puts_labeled_rounds_at_weight_one_and_cps_on_unlabeled_images(scheduler):
    loss = RecordingLoss()
    trainer = make_trainer(scheduler, rounds=1, loss=loss, unsupervised_images="unlabeled")
    trainer.run()
    # supervised (2 calls on the 2 labeled images), CPS (2 calls on the 3 unlabeled), align labeled, align unlabeled
    assert [logits.shape[0] for logits, _ in loss.calls] == [2, 2, 3, 3, 2, 3]
    scalars = trainer.state.output["scalars"]
    assert {"loss/align_labeled", "loss/reconstruction_labeled", "loss/align", "loss/cps"} <= set(scalars)
    terms = [v for k, v in scalars.items() if k.startswith("loss/") and k != "loss/total"]
    weighted = scalars["loss/cps"] + scalars["loss/align"] + scalars["loss/reconstruction"]
    fixed = sum(terms) - weighted
    assert abs(scalars["loss/total"] - (fixed + scalars["lambda"] * weighted)) < 1e-4


def test_independent_noise_gives_teacher_and_student_their_own_draws(scheduler):
    for independent in (False, True):
        trainer = make_trainer(scheduler, rounds=0, independent_noise=independent)
        seen = []
        for net in (trainer.teacher, trainer.network):
            original = net.forward
            net.forward = lambda image, mask, t, original=original: seen.append((mask, t)) or original(image, mask, t)
        trainer.run()
        (teacher_mask, teacher_t), (student_mask, student_t) = seen
        assert torch.equal(teacher_t, student_t) == (not independent)
        assert torch.equal(teacher_mask, student_mask) == (not independent)


def test_copy_paste_trains_the_student_on_mixed_images(scheduler):
    from scripts.copy_paste import BidirectionalCopyPaste

    loss = RecordingLoss()
    trainer = make_trainer(scheduler, rounds=0, loss=loss, unsupervised_images="unlabeled",
                           copy_paste=BidirectionalCopyPaste())
    trainer.run()
    # the student on 2 x 3 mixed images, supervised (teacher, student), the teacher on the 3 unlabeled ones
    assert [logits.shape[0] for logits, _ in loss.calls] == [6, 2, 2, 3]
    mixed_targets = loss.calls[0][1]
    labels = trainer.labeled_data_loader[0]["label"]
    assert all((mixed_targets[i] == labels[i % 3 % 2]).float().mean() > 0.4 for i in range(6))  # pasted label regions
    assert trainer.state.output["pred"].shape[0] == 5
    with pytest.raises(ValueError, match="unlabeled"):
        make_trainer(scheduler, copy_paste=BidirectionalCopyPaste())


def test_teacher_copy_paste_trains_the_teacher_on_mixes_with_the_students_targets(scheduler):
    from scripts.copy_paste import BidirectionalCopyPaste

    loss = RecordingLoss()
    trainer = make_trainer(scheduler, rounds=0, loss=loss, unsupervised_images="unlabeled",
                           copy_paste=BidirectionalCopyPaste(), teacher_copy_paste=True)
    trainer.run()
    # the student on 2 x 3 mixes, supervised (teacher, student), the teacher on 2 x 3 mixes of its own
    assert [logits.shape[0] for logits, _ in loss.calls] == [6, 2, 2, 6]
    labels = trainer.labeled_data_loader[0]["label"]
    student_argmax = trainer.state.output["pred"].argmax(1, keepdim=True)[2:]
    teacher_targets = loss.calls[3][1]
    # every target pixel is the paired label's or the student's argmax for that unlabeled image
    for i in range(6):
        from_label, from_student = teacher_targets[i] == labels[i % 3 % 2], teacher_targets[i] == student_argmax[i % 3]
        assert bool((from_label | from_student).all()) and from_student.float().mean() > 0.4
    with pytest.raises(ValueError, match="needs copy_paste"):
        make_trainer(scheduler, unsupervised_images="unlabeled", teacher_copy_paste=True)


@pytest.mark.parametrize("unsupervised_images", ["all", "unlabeled"])
def test_a_backward_per_detached_share_gives_the_gradients_of_one_backward(scheduler, unsupervised_images):
    trainer = make_trainer(scheduler, rounds=3, detach_rounds=True, unsupervised_images=unsupervised_images)
    images, labels = torch.rand(5, 1, 16, 16), torch.randint(0, 3, (2, 1, 16, 16)).float()
    networks = [trainer.network, trainer.teacher]
    gradients, totals = [], []
    for per_round in (False, True):
        for network in networks:
            network.zero_grad()
        torch.manual_seed(0)
        calls = []

        def backward_share(fixed, weighted):
            calls.append(1)
            (fixed + 0.7 * weighted).backward()
        losses = trainer.losses(images, labels, 2, backward_share if per_round else None)
        assert len(calls) == (1 + 3 if per_round else 0)   # the segmentations, then one backward per round
        assert losses.backpropagated == per_round
        total = losses.total(0.7)
        if not per_round:
            total.backward()
        totals.append(total.item())
        gradients.append([p.grad.clone() for net in networks for p in net.parameters() if p.grad is not None])
    assert totals[0] == pytest.approx(totals[1], rel=1e-6)
    assert len(gradients[0]) == len(gradients[1]) > 0
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*gradients))
