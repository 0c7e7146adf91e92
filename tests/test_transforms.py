import logging

import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor

from test_errors import CONFIGS
from scripts.transforms import CheckMinimumSized, WarnVanishingClassesd


def test_a_class_that_resizing_removes_is_named_with_its_file(caplog):
    mask = torch.zeros(1, 64, 64)
    mask[0, 10, 10] = 2                   # one pixel of class 2: gone at 16 x 16 (nearest neighbour)
    mask[0, 30:50, 30:50] = 1             # a block of class 1: kept
    data = {"label": MetaTensor(mask, meta={"filename_or_obj": "/data/masks/case7.png"})}
    check = WarnVanishingClassesd(keys="label", spatial_size=[16, 16])
    with caplog.at_level(logging.WARNING):
        assert check(data) is data
    assert "/data/masks/case7.png: resized to [16, 16], its mask loses class(es) [2]" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        WarnVanishingClassesd(keys="label", spatial_size=[64, 64])(data)
    assert caplog.text == ""


def test_training_checks_masks_before_they_are_resized():
    parser = ConfigParser()
    parser.read_config(f"{CONFIGS}/train.yaml")
    names = [t["_target_"] for t in parser["deterministic_transforms"]]
    assert names.index("scripts.transforms.WarnVanishingClassesd") == names.index("Resized") - 1


@pytest.mark.parametrize("size, shown", [((1, 1), "1 x 1"), ((1, 7), "1 x 7"), ((5, 1), "5 x 1")])
def test_an_image_with_a_side_of_one_pixel_is_refused_naming_the_file(size, shown):
    image = MetaTensor(torch.zeros(1, *size), meta={"filename_or_obj": "/data/images/line.png"})
    with pytest.raises(ValueError, match=f"/data/images/line.png is {shown} pixels: too small to segment"):
        CheckMinimumSized(keys="image")({"image": image})
    CheckMinimumSized(keys="image")({"image": MetaTensor(torch.zeros(1, 2, 2))})


def test_stronger_augmentation_moves_image_and_mask_together():
    parser = ConfigParser()
    parser.read_config([f"{CONFIGS}/train.yaml", f"{CONFIGS}/variants/strong_augmentation.yaml"])
    augment = parser.get_parsed_content("random_transforms")
    torch.manual_seed(0)
    mask = torch.zeros(1, 64, 64)
    mask[0, 8:30, 12:50] = 1
    mask[0, 40:60, 5:20] = 1
    for seed in range(10):
        data = {"image": mask.repeat(3, 1, 1) * 2 - 1, "label": mask.clone()}
        for transform in augment:
            if hasattr(transform, "set_random_state"):
                transform.set_random_state(seed)
            data = transform(data)
        image, label = data["image"].as_tensor(), data["label"].as_tensor()
        assert torch.equal(label.unique(), torch.tensor([0.0, 1.0]))   # nearest: no new label values
        agreement = ((image.mean(0, keepdim=True) > image.mean()) == (label > 0.5)).float().mean()
        assert agreement > 0.9, f"seed {seed}: image and mask disagree on {1 - agreement:.0%} of the pixels"
