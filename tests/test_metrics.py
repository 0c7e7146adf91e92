import json
import os

import pytest
import torch
from ignite.engine import Engine
from monai.bundle import ConfigParser
from monai.networks.utils import one_hot

from scripts.metrics import VolumeDice

ROOT = os.path.join(os.path.dirname(__file__), "..")
ACDC = os.path.join(ROOT, "..", "shared", "data", "ACDC")
CONFIGS = os.path.join(ROOT, "bundle", "configs")


def test_volume_dice_adds_up_the_slices_of_each_volume():
    label = torch.zeros(4, 1, 4, 4)
    label[:, :, :2] = 1                               # 8 pixels of class 1 in every slice
    prediction = label.clone()
    prediction[0, :, :2, :2] = 0                      # volume a, slice 0: 4 of the 8 missed
    prediction[3, :, 3, :] = 2                        # volume b, slice 1: class 2, absent from the label
    volumes = ["a", "a", "b", "b"]
    metric = VolumeDice()
    engine = Engine(lambda e, b: b)
    engine.state.metric_details = {}
    metric.attach(engine, "volume_dice")
    engine.run([(one_hot(prediction, 3), one_hot(label, 3), volumes)])
    details = engine.state.metric_details["volume_dice"]
    assert details.shape == (2, 2)
    assert details[0, 0].item() == pytest.approx(2 * 12 / (12 + 16))   # stacked, not a mean of slice Dice
    assert details[1, 0].item() == 1.0 and details[:, 1].isnan().all()  # class 2 undefined: not in any label
    assert engine.state.metrics["volume_dice"] == pytest.approx((2 * 12 / 28 + 1.0) / 2)


@pytest.mark.skipif(not os.path.isdir(ACDC), reason="../shared/data/ACDC is not present")
def test_acdc_test_list_is_the_test_split_and_is_scored_per_volume(tmp_path):
    data = tmp_path / "ACDC"
    data.mkdir()
    for name in ("images", "masks", "val.list"):
        os.symlink(os.path.join(os.path.abspath(ACDC), name), data / name)
    train = open(os.path.join(ACDC, "train.list")).read().split()
    (data / "train.list").write_text("\n".join(train[4:]) + "\n")
    (data / "test.list").write_text("\n".join(train[:4]) + "\n")  # two patients, two frames each
    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, "train.yaml"), os.path.join(CONFIGS, "datasets", "acdc.yaml"),
                        os.path.join(CONFIGS, "profiles", "cpu_2d.yaml")])
    report = tmp_path / "models" / "test_metrics.json"
    for key, value in {"dataset_dir": str(data), "output_dir": str(tmp_path / "eval"),
                       "ckpt_dir": str(tmp_path / "models"), "label_fraction": 5, "test_own_model": False}.items():
        parser[key] = value
    datalist = parser.get_parsed_content("datalist")
    assert sorted({item["volume"] for item in datalist["test"]}) == sorted(train[:4])
    os.makedirs(tmp_path / "models")
    torch.save({"model": parser.get_parsed_content("network").state_dict()}, tmp_path / "models" / "model.pt")
    parser.get_parsed_content("test#evaluator").run()
    scores = json.loads(report.read_text())
    assert scores["volume_dice"]["count"] == 4 and scores["dice"]["count"] == len(datalist["test"])
    assert set(scores["volume_dice"]["per_class"]) == {"right_ventricle", "myocardium", "left_ventricle"}
