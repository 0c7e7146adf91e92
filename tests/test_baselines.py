"""The semi-supervised baselines: the property that defines each, and one iteration of each config in 2D and 3D."""

import json
import os

import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigParser
from PIL import Image

import publisher_layouts as layouts
from helpers import VOLUME_LA, tiny_network, write_folder_dataset
from scripts.baselines.cross_consistency import AuxiliaryDecoders, feature_dropout, feature_noise
from scripts.baselines.pyramid_consistency import PyramidHeads
from scripts.diffusion import pure_noise
from scripts.losses import normalized_entropy, rectified_pyramid_consistency, uncertainty_masked_mse
from scripts.unet_stages import decode, encode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "bundle", "configs")
METHODS = ["em", "cps", "uamt", "cct", "urpc", "bcp"]


def baseline(method):
    """The overlays of a semi-supervised baseline: the shared wiring, then its own."""
    return ["baselines/semi_supervised.yaml", f"baselines/{method}.yaml"]


def parse(overlays, **settings):
    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, name) for name in ["train.yaml", *overlays]])
    for key, value in settings.items():
        parser[key] = value
    return parser


def small(tmp_path, dataset_dir, **extra):
    return {
        "dataset_dir": str(dataset_dir), "output_dir": str(tmp_path / "eval"), "ckpt_dir": str(tmp_path / "models"),
        "max_epochs": 2, "epoch_length": 1, "val_interval": 1, "batch_size": 2, "labeled_batch_size": 2,
        "label_fraction": 50, "network_def#channels": [8, 16, 16, 16], "network_def#num_head_channels": 16, **extra,
    }


@pytest.mark.parametrize("spatial_dims, shared_body", [(2, True), (2, False), (3, True)])
def test_unet_stages_reproduce_the_mask_pathway(spatial_dims, shared_body):
    network = tiny_network(spatial_dims=spatial_dims, shared_body=shared_body)
    image = torch.rand(2, 1, *([16] * spatial_dims))
    noise, timesteps = torch.randn(2, 3, *([16] * spatial_dims)), torch.tensor([3, 700])
    unet, x, pathway = network.mask_pathway_body(image, noise)
    h, skips, emb = encode(unet, x, timesteps, pathway)
    features, levels = decode(unet.up_blocks, h, skips, emb)
    assert torch.allclose(unet.out(features)[:, :3], network(image, noise, timesteps), atol=1e-6)
    assert [level.shape[-1] for level in levels] == [8, 16]  # features entering each up block, coarse to fine


def test_entropy_is_zero_for_one_hot_and_one_for_uniform():
    one_hot = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 8, 8)), 4).permute(0, 3, 1, 2).float()
    assert normalized_entropy(one_hot).abs().max() < 1e-6
    assert torch.allclose(normalized_entropy(torch.full((2, 4, 8, 8), 0.25)), torch.ones(2, 1, 8, 8))
    logits = torch.randn(2, 4, 8, 8, requires_grad=True)
    em = normalized_entropy(torch.softmax(logits, dim=1)).mean()
    assert 0 < em.item() < 1
    (sharper := (logits * 5).detach()).requires_grad_()
    assert normalized_entropy(torch.softmax(sharper, dim=1)).mean() < em  # sharper predictions, lower loss


def test_uncertainty_mask_removes_uncertain_pixels_from_the_consistency():
    student = torch.rand(1, 2, 4, 4, requires_grad=True)
    teacher = torch.rand(1, 2, 4, 4)
    certain = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    certain[..., :2] = True
    uncertainty_masked_mse(student, teacher, certain).backward()
    assert student.grad[..., 2:].abs().max() == 0 and student.grad[..., :2].abs().max() > 0
    assert uncertainty_masked_mse(student, teacher, torch.zeros_like(certain)).item() == 0


def test_rectified_pyramid_consistency_is_zero_when_scales_agree():
    p = torch.softmax(torch.randn(2, 3, 8, 8), dim=1)
    assert rectified_pyramid_consistency([p, p, p]).abs() < 1e-6
    q = torch.softmax(torch.randn(2, 3, 8, 8), dim=1)
    assert rectified_pyramid_consistency([p, q]) > 0


def test_cct_auxiliary_decoders_see_perturbed_features():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 6)
    noisy = feature_noise(x)
    assert not torch.equal(noisy, x) and ((noisy - x).abs() <= 0.3 * x.abs() + 1e-6).all()
    dropped = feature_dropout(x.abs())
    peak = x.abs().mean(dim=1).flatten(1).argmax(dim=1)
    assert all(dropped[i].flatten(1)[:, peak[i]].abs().sum() == 0 for i in range(2))  # the most active spot goes

    network = tiny_network()
    decoders = AuxiliaryDecoders(network)
    seen = []
    for decoder in decoders.decoders:
        decoder[0].register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["hidden_states"]),
                                             with_kwargs=True)
    image, noise, t = torch.rand(2, 1, 16, 16), torch.randn(2, 3, 16, 16), torch.tensor([5, 500])
    unet, x, pathway = network.mask_pathway_body(image, noise)
    h, skips, emb = encode(unet, x, t, pathway)
    logits = decoders(h, skips, emb)
    assert len(logits) == 3 and all(lg.shape == (2, 3, 16, 16) for lg in logits)
    assert len(seen) == 3 and all(not torch.allclose(s, h) for s in seen)
    assert sum(p.numel() for p in decoders.parameters()) > 0 and not any(
        p is q for p in decoders.parameters() for q in network.parameters()
    )


def test_urpc_heads_have_the_stated_scales():
    network = tiny_network()  # channels (8, 16): two up blocks, one head at 1/2
    heads = PyramidHeads(network, num_heads=1)
    image, noise, t = torch.rand(2, 1, 16, 16), torch.randn(2, 3, 16, 16), torch.tensor([1, 2])
    unet, x, pathway = network.mask_pathway_body(image, noise)
    _, levels = decode(unet.up_blocks, *encode(unet, x, t, pathway))
    assert levels[0].shape[-2:] == (8, 8)
    outputs = heads(levels, image.shape[2:])
    assert [o.shape for o in outputs] == [(2, 3, 16, 16)]
    parser = parse(baseline("urpc"))
    big = parser.get_parsed_content("network_def")  # the bundle's 4-level network: heads at 1/8, 1/4, 1/2
    _, levels = decode(big.mask_unet.up_blocks, *encode(big.mask_unet, torch.rand(1, 4, 32, 32), torch.tensor([0]),
                                                         torch.tensor([0])))
    assert [level.shape[-1] for level in levels[:3]] == [4, 8, 16]
    assert [h.in_channels for h in parser.get_parsed_content("pyramid_heads").heads] == [
        level.shape[1] for level in levels[:3]
    ]


def test_cps_networks_differ_at_init(tmp_path):
    write_folder_dataset(tmp_path / "data", num_images=12)
    parser = parse(baseline("cps"), **small(tmp_path, tmp_path / "data"))
    a, b = parser.get_parsed_content("network"), parser.get_parsed_content("second_network")
    assert a is not b and any(not torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    image, noise, t = torch.rand(1, 1, 32, 32), torch.randn(1, 3, 32, 32), torch.tensor([10])
    assert not torch.equal(a(image, noise, t).argmax(1), b(image, noise, t).argmax(1))
    optimized = {id(p) for group in parser.get_parsed_content("train#optimizer").param_groups for p in group["params"]}
    assert {id(p) for p in a.parameters()} | {id(p) for p in b.parameters()} == optimized


def test_uamt_teacher_gets_no_gradient_and_follows_the_decay(tmp_path):
    write_folder_dataset(tmp_path / "data", num_images=12)
    parser = parse(baseline("uamt"), **small(tmp_path, tmp_path / "data", uncertainty_passes=2))
    trainer = parser.get_parsed_content("train#trainer")
    student, teacher = parser.get_parsed_content("network"), parser.get_parsed_content("ema_teacher")
    snapshots = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: snapshots.append(
        ([p.detach().clone() for p in student.parameters()], [p.detach().clone() for p in teacher.module.parameters()])
    ))
    trainer.run()
    assert all(p.grad is None for p in teacher.parameters())
    (s1, t1), (s2, t2) = snapshots
    assert all(torch.equal(a, b) for a, b in zip(s1, t1))  # the first update copies the student
    assert all(torch.allclose(t, 0.99 * old + 0.01 * s, atol=1e-6) for t, old, s in zip(t2, t1, s2))
    assert 0.0 <= trainer.certain_fraction <= 1.0


def test_bcp_student_learns_the_teachers_argmax_inside_the_box(tmp_path):
    write_folder_dataset(tmp_path / "data", num_images=12)
    parser = parse(baseline("bcp"), **small(tmp_path, tmp_path / "data", max_epochs=1))
    trainer = parser.get_parsed_content("train#trainer")
    teacher = parser.get_parsed_content("ema_teacher")
    segment, mixes = trainer.segment, []

    def teacher_says_class_2(network, images):  # the teacher (only it is called without gradients) says class 2
        logits = segment(network, images)
        return torch.nn.functional.one_hot(torch.full_like(logits[:, 0], 2).long(), 3).movedim(-1, 1).float() \
            if not torch.is_grad_enabled() else logits

    def recorded(labeled, labels, unlabeled, pseudo_labels):
        mixes.append((labels, pseudo_labels, *mix(labeled, labels, unlabeled, pseudo_labels)))
        return mixes[-1][2:]

    mix = trainer.copy_paste.mix
    trainer.segment, trainer.copy_paste.mix = teacher_says_class_2, recorded
    before = [p.detach().clone() for p in teacher.module.parameters()]
    trainer.run()
    labels, pseudo_labels, _, targets, box = mixes[0]
    assert (pseudo_labels == 2).all()
    inside = box.bool().expand_as(targets[: box.shape[0]])
    assert (targets[: box.shape[0]][inside] == 2).all() and (targets[box.shape[0]:][~inside] == 2).all()
    assert set(trainer.state.output["scalars"]) >= {"loss/supervised", "loss/copy_paste", "lambda"}
    assert all(p.grad is None for p in teacher.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, teacher.module.parameters()))  # followed the student


@pytest.mark.parametrize("pretrain_epochs", [1, 0])
def test_bcp_pretrains_on_labeled_mixes_then_starts_student_and_teacher_from_that_network(tmp_path, pretrain_epochs):
    write_folder_dataset(tmp_path / "data", num_images=12)
    parser = parse(baseline("bcp"), **small(tmp_path, tmp_path / "data", bcp_pretrain_epochs=pretrain_epochs))
    pretrainer, network = parser.get_parsed_content("pretrain#trainer"), parser.get_parsed_content("network")
    teacher = parser.get_parsed_content("ema_teacher")   # built before pre-training, as a copy of the network
    mix, mixes = pretrainer.copy_paste.mix, []
    pretrainer.copy_paste.mix = lambda *args: mixes.append((args, mix(*args))) or mixes[-1][1]
    built = [p.detach().clone() for p in network.parameters()]
    pretrainer.run()
    pretrained = [p.detach().clone() for p in network.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(built, pretrained)) == bool(pretrain_epochs)
    if pretrain_epochs:   # every labeled image mixed with the next one of its batch, the two labels as targets
        (images, labels, partners, partner_labels), (_, targets, box) = mixes[0]
        assert torch.equal(partners, images.roll(1, dims=0)) and torch.equal(partner_labels, labels.roll(1, dims=0))
        inside = box.bool().expand_as(labels)
        assert torch.equal(targets[: len(labels)][inside], partner_labels[inside])
        assert torch.equal(targets[len(labels):][inside], labels[inside])
    else:
        assert mixes == []
    trainer = parser.get_parsed_content("train#trainer")
    at_start = []
    trainer.add_event_handler(Events.ITERATION_STARTED(once=1), lambda _: at_start.extend(
        torch.equal(t, s) for t, s in zip(teacher.module.parameters(), pretrained)))
    trainer.run()
    assert at_start and all(at_start)   # the teacher starts as the (pre-trained) student


def test_bcp_needs_copy_paste(tmp_path):
    write_folder_dataset(tmp_path / "data", num_images=12)
    parser = parse(baseline("bcp"), **small(tmp_path, tmp_path / "data", copy_paste=False))
    with pytest.raises(Exception) as error:
        parser.get_parsed_content("train#trainer")
    assert "set copy_paste to true" in str(error.value.__cause__)


def test_the_shared_overlay_alone_says_which_overlay_is_missing(tmp_path):
    write_folder_dataset(tmp_path / "data", num_images=12)
    parser = parse(["baselines/semi_supervised.yaml"], **small(tmp_path, tmp_path / "data"))
    with pytest.raises(Exception, match=r"give a baseline's own overlay \(baselines/<method>.yaml\)"):
        parser.get_parsed_content("train#trainer")


def test_the_constant_reference_scores_every_pixel_as_foreground_through_the_bundles_test(tmp_path):
    write_folder_dataset(tmp_path / "data", num_images=12, num_classes=2)
    parser = parse(["baselines/constant.yaml"], **small(tmp_path, tmp_path / "data", num_classes=2))
    parser.get_parsed_content("run")
    masks = [np.asarray(Image.open(item["label"])) > 0 for item in parser.get_parsed_content("datalist")["test"]]
    expected = np.mean([2 * mask.sum() / (mask.sum() + mask.size) for mask in masks])
    report = json.loads((tmp_path / "models" / "test_metrics.json").read_text())
    assert report["num_images"] == len(masks) > 0 and report["dice"]["mean"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_one_iteration_of_each_baseline_in_2d(tmp_path, method):
    write_folder_dataset(tmp_path / "data", num_images=12)
    parser = parse(baseline(method), **small(tmp_path, tmp_path / "data", max_epochs=1,
                                                          uncertainty_passes=2))
    trainer = parser.get_parsed_content("train#trainer")
    trainer.run()
    assert trainer.state.iteration == 1 and np.isfinite(trainer.state.output["loss"].item())
    scalars = trainer.state.output["scalars"]
    assert {"loss/total", "loss/supervised", "lambda"} <= set(scalars) and len(scalars) >= 5
    assert os.path.isfile(tmp_path / "models" / "model.pt")  # validation ran and saved the best network
    state = torch.load(tmp_path / "models" / "train_state.pt", weights_only=False)
    own_modules = {"cps": {"second_network"}, "uamt": {"ema_teacher"}, "bcp": {"ema_teacher"},
                   "cct": {"auxiliary_decoders"}, "urpc": {"pyramid_heads"}, "em": set()}[method]
    assert set(state) == {"network", "optimizer", "lr_scheduler", "best_model_saver", "run", "trainer", *own_modules}
    for key in own_modules:  # what the trainer declares is what it trains
        module = trainer.checkpoint_state()[key]
        assert all(torch.equal(state[key][name], value) for name, value in module.state_dict().items())


@pytest.mark.parametrize("method", METHODS)
def test_one_iteration_of_each_baseline_in_3d(tmp_path, method):
    layouts.write_la_h5(tmp_path / "LA", num_train=6, num_test=1, shape=(20, 20, 16))
    parser = parse([*VOLUME_LA, *baseline(method), "profiles/cpu_3d.yaml"], **small(
        tmp_path, tmp_path / "LA", max_epochs=1, patch_size=[16, 16, 16], num_labeled=2, uncertainty_passes=2,
    ))
    trainer = parser.get_parsed_content("train#trainer")
    trainer.run()
    assert trainer.state.output["pred"].shape[2:] == (16, 16, 16)
    assert np.isfinite(trainer.state.output["loss"].item())
