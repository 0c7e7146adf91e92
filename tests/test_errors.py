import os
import subprocess
import sys

from helpers import HANG_TIMEOUT
from scripts.errors import own_error
from scripts.datasets.splits import DatasetError

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "bundle", "configs")


def test_the_innermost_error_of_the_bundle_is_found_in_the_chain():
    from scripts.datasets import prepare

    try:
        try:
            prepare("folder", "/no/such/folder", "/tmp", num_classes=2)
        except DatasetError as error:
            raise RuntimeError("Failed to instantiate component") from error
    except RuntimeError as wrapped:
        assert "dataset folder not found: /no/such/folder" in str(own_error(wrapped))


def test_a_bundle_error_is_the_last_line_of_a_failed_run(tmp_path):
    command = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file",
               os.path.join(CONFIGS, "train.yaml"), "--output_dir", str(tmp_path), "--dataset_dir", str(tmp_path / "none")]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == f"error: dataset folder not found: {tmp_path / 'none'}"
    assert "Traceback" in result.stderr   # the full traceback stays, above


def test_images_with_another_channel_count_are_refused_before_training_naming_the_file(tmp_path):
    import numpy as np
    import pytest
    from monai.bundle import ConfigParser
    from PIL import Image

    from helpers import write_folder_dataset

    write_folder_dataset(tmp_path / "data", num_images=12)
    rgb = tmp_path / "data" / "images" / "case000.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(rgb)
    parser = ConfigParser()
    parser.read_config(os.path.join(CONFIGS, "train.yaml"))
    for key, value in {"dataset_dir": str(tmp_path / "data"), "output_dir": str(tmp_path / "eval"),
                       "label_fraction": 100, "spatial_size": [16, 16]}.items():
        parser[key] = value
    with pytest.raises(Exception) as caught:
        parser.get_parsed_content("train#labeled_dataset")
    assert f"{rgb} has 3 channel(s), but image_channels is 1: set --image_channels 3" in str(own_error(caught.value))


def test_inference_checks_every_input_before_writing_any_mask(tmp_path):
    import numpy as np
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for index in range(3):
        Image.fromarray(np.full((16, 16), 40 * index, np.uint8)).save(images / f"case{index}.png")
    rgb = images / "case3.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(rgb)
    output = tmp_path / "masks"
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", os.path.join(CONFIGS, "inference.yaml"),
               "--input_path", str(images), "--output_dir", str(output)]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {rgb} has 3 channel(s), but image_channels is 1: set --image_channels 3 (or convert the images).")
    assert not output.exists() or not any(output.rglob("*.png"))
