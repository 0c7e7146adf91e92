import logging

import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor

from test_errors import CONFIGS
from scripts.transforms import WarnVanishingClassesd


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
