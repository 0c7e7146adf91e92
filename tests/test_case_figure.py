"""``test_cases.png``: the test cases drawn are spread over the test's Dice ranking, scored as the test scores them."""

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.data import MetaTensor
from monai.networks.utils import one_hot
from PIL import Image

from scripts.test_cases import RankedCasesFigure


def _case(path, target, prediction, num_classes=3):
    image = MetaTensor(torch.zeros(1, *target.shape), meta={"filename_or_obj": str(path)})
    as_one_hot = lambda labels: one_hot(torch.as_tensor(labels)[None, None].long(), num_classes)[0]  # noqa: E731
    return {"image": image, "pred": as_one_hot(prediction), "ground_truth": as_one_hot(target)}


def _run(handler, batches):
    engine = Engine(lambda engine, batch: batch)
    handler.attach(engine)
    engine.run(batches)


def test_cases_are_ranked_by_the_tests_dice_and_spread_from_the_worst_to_the_best(tmp_path):
    rng = np.random.default_rng(0)
    items, dice = [], {}
    for k in range(7):
        target = np.zeros((20, 30), np.uint8)
        target[2:12, 3:23] = 1                                  # 200 pixels of class 1
        prediction = target.copy()
        prediction[2:2 + k, 3:23] = 0                           # k rows missed: Dice 2(200 - 20k) / (400 - 20k)
        path = tmp_path / f"case{k}.png"
        Image.fromarray((rng.random((30, 20)) * 255).astype(np.uint8)).save(path)
        items.append(_case(path, target, prediction))
        dice[f"case{k}"] = 2 * (200 - 20 * k) / (400 - 20 * k)
    items.append(_case(tmp_path / "case0.png", np.zeros((20, 30)), np.zeros((20, 30))))  # no foreground: not ranked
    handler = RankedCasesFigure(str(tmp_path / "figures" / "test_cases.png"), label_key="ground_truth", num_cases=3)
    _run(handler, [items[:4], items[4:]])

    assert len(handler.cases) == 7
    drawn = [(case["name"], case["score"]) for case in handler.chosen()]
    assert [name for name, _ in drawn] == ["case6", "case3", "case0"]
    assert [score for _, score in drawn] == pytest.approx([dice[name] for name, _ in drawn])
    with Image.open(tmp_path / "figures" / "test_cases.png") as figure:
        assert figure.format == "PNG" and min(figure.size) > 100


def test_a_volume_is_drawn_at_its_slice_with_the_most_labeled_voxels(tmp_path):
    target = np.zeros((16, 12, 5), np.uint8)
    target[2:6, 2:6, 1] = 1
    target[2:10, 2:10, 3] = 2
    path = tmp_path / "volume.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((16, 12, 5)).astype(np.float32), np.eye(4)), path)
    handler = RankedCasesFigure(str(tmp_path / "test_cases.png"), label_key="ground_truth", max_side=8)
    _run(handler, [[_case(path, target, target)]])

    (case,) = handler.chosen()
    assert case["depth"] == 3 and case["score"] == pytest.approx(1.0)
    np.testing.assert_array_equal(case["target"], target[::2, ::2, 3])   # shrunk to at most 8 pixels a side
    assert (tmp_path / "test_cases.png").is_file()
