"""Settings travel with the model: training records them beside model.pt, inference serves the model with them
and refuses an option or overlay that differs."""

import json
import logging
import os

import pytest
from monai.bundle import ConfigParser

from scripts.model_settings import SETTINGS_FILE, check_served_settings, config_overlays, read_model_settings

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "bundle", "configs")
RECORDED = {
    "num_classes": 2, "image_channels": 3, "spatial_size": [128, 128], "volume_grid": {}, "mask_values": [0, 255],
    "network": {"spatial_dims": 2, "channels": [8, 16, 32, 64], "attention_levels": [False] * 4, "num_res_blocks": 1,
                "norm_num_groups": 8, "num_head_channels": 64, "shared_body": False},
    "preprocessing": ["LoadImaged", "EnsureChannelFirstd", "CheckChannelsd", "ScaleIntensityd", "Resized",
                      "EnsureTyped"],
    "class_names": ["gland"], "overlays": ["configs/train.yaml"],
}


def inference_parser(model_folder, *overlays):
    (model_folder / SETTINGS_FILE).write_text(json.dumps(RECORDED))
    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, "inference.yaml"), *[os.path.join(CONFIGS, o) for o in overlays]])
    parser["model_path"] = str(model_folder / "model.pt")
    return parser


def test_inference_serves_the_model_with_its_recorded_settings(tmp_path):
    parser = inference_parser(tmp_path)
    assert parser.get_parsed_content("spatial_size") == [128, 128]
    assert parser.get_parsed_content("mask_values") == [0, 255]
    network = parser.get_parsed_content("network_def")
    assert network.image_channels == 3 and network.num_classes == 2 and not network.shared_body
    resize = [t for t in parser.get_parsed_content("preprocessing").transforms if type(t).__name__ == "Resized"]
    assert tuple(resize[0].resizer.spatial_size) == (128, 128)
    parser.get_parsed_content("served_settings_check")   # the configs alone serve it as it was trained


@pytest.mark.parametrize("overlays, override, named", [
    ([], {"spatial_size": [64, 64]}, "spatial_size [128, 128] (here [64, 64])"),
    (["datasets/acdc.yaml"], {}, "num_classes 2 (here 4)"),
    (["datasets/volumes.yaml"], {}, "network"),
])
def test_an_option_or_overlay_that_differs_from_the_record_is_refused(tmp_path, overlays, override, named):
    parser = inference_parser(tmp_path, *overlays)
    for key, value in override.items():
        parser[key] = value
    with pytest.raises(RuntimeError) as error:   # MONAI wraps the error of a component
        parser.get_parsed_content("served_settings_check")
    message = str(error.value.__cause__)
    assert "was trained with other settings" in message and named in message
    assert SETTINGS_FILE in message and "configs/train.yaml" in message


def test_saved_mask_values_may_change_at_inference(tmp_path):
    parser = inference_parser(tmp_path)
    parser["mask_values"] = [0, 1]
    parser.get_parsed_content("served_settings_check")


def test_a_model_without_a_record_is_served_with_the_configs_settings(tmp_path, caplog):
    defaults = {"num_classes": 3, "spatial_size": [64, 64]}
    with caplog.at_level(logging.WARNING):
        assert read_model_settings(str(tmp_path / "model.pt"), defaults) == defaults
    assert f"{tmp_path / SETTINGS_FILE} not found" in caplog.text
    check_served_settings(str(tmp_path / "model.pt"), {"num_classes": 4})


def test_a_record_that_lacks_a_setting_names_the_file(tmp_path):
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"num_classes": 2}))
    with pytest.raises(ValueError, match=f"{SETTINGS_FILE} lacks spatial_size"):
        read_model_settings(str(tmp_path / "model.pt"), {"num_classes": 3, "spatial_size": [64, 64]})
    (tmp_path / SETTINGS_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=f"cannot read .*{SETTINGS_FILE}"):
        read_model_settings(str(tmp_path / "model.pt"), {"num_classes": 3})


def test_the_overlays_are_recorded_relative_to_the_bundle():
    overlays = config_overlays(["run", "training", "--config_file",
                                str([os.path.join(CONFIGS, "train.yaml"), os.path.join(CONFIGS, "datasets", "glas.yaml")])])
    assert overlays == ["configs/train.yaml", "configs/datasets/glas.yaml"]
