import torch
from monai.losses import DiceCELoss

from conftest import spy_on_image_pathway, tiny_network
from scripts.cotraining import CoTrainer
from scripts.losses import cross_pseudo_supervision
from scripts.ramps import LinearRamp

CE = DiceCELoss(to_onehot_y=True, softmax=True, lambda_dice=0.0)


class RecordingLoss:
    def __init__(self):
        self.calls = []

    def __call__(self, logits, target):
        self.calls.append((logits.detach().clone(), target.detach().clone()))
        return CE(logits, target)


def make_trainer(scheduler, rounds=1, reset_rounds=False, loss=CE, max_epochs=1, num_batches=1):
    student, teacher = tiny_network(seed=1), tiny_network(seed=2)
    labeled = [{"image": torch.rand(2, 1, 16, 16), "label": torch.randint(0, 3, (2, 1, 16, 16)).float()}]
    unlabeled = [{"image": torch.rand(3, 1, 16, 16)} for _ in range(num_batches)]
    return CoTrainer(
        device="cpu", max_epochs=max_epochs, train_data_loader=unlabeled, labeled_data_loader=labeled,
        network=student, optimizer=torch.optim.Adam(student.parameters(), 1e-3), teacher=teacher,
        teacher_optimizer=torch.optim.Adam(teacher.parameters(), 1e-3), noise_scheduler=scheduler,
        loss_function=loss, consistency_weight=LinearRamp(5.0, max_epochs), rounds=rounds,
        reset_rounds=reset_rounds, reconstruction_clip=(-1.0, 1.0),
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
    assert trainer.state.output["scalars"]["loss/align"] == 0.0
    assert trainer.state.output["reconstruction"] is None
