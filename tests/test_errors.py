import os
import re
import subprocess
import sys

import numpy as np
import pytest

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


def test_a_lossy_mask_format_is_refused_before_any_work(tmp_path):
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", os.path.join(CONFIGS, "inference.yaml"),
               "--input_path", str(tmp_path), "--output_dir", str(tmp_path / "masks"), "--output_ext", ".jpg"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: --output_ext .jpg: masks must be saved losslessly")
    assert not (tmp_path / "masks").exists()


def _nifti_folder(root, broken_value):
    """A folder dataset of 2D NIfTI images and masks; the first image holds one ``broken_value`` pixel."""
    import nibabel as nib
    import numpy as np

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index in range(6):
        image = np.full((16, 16), float(index), np.float32)
        if index == 0:
            image[3, 4] = broken_value
        mask = np.zeros((16, 16), np.uint8)
        mask[4:9, 4:9] = 1
        nib.save(nib.Nifti1Image(image, np.eye(4)), str(root / "images" / f"case{index}.nii.gz"))
        nib.save(nib.Nifti1Image(mask, np.eye(4)), str(root / "masks" / f"case{index}.nii.gz"))
    return root / "images" / "case0.nii.gz"


def test_nan_or_infinite_image_values_are_refused_naming_the_file(tmp_path):
    import numpy as np
    import pytest

    from scripts.datasets import prepare

    for name, value in (("nan", np.nan), ("inf", np.inf)):
        broken = _nifti_folder(tmp_path / name, value)
        with pytest.raises(DatasetError, match=rf"image {broken} has 1 NaN or infinite values"):
            prepare("folder", str(tmp_path / name), str(tmp_path / f"prepared_{name}"), num_classes=2)


def test_inference_refuses_an_image_with_nan_before_writing_any_mask(tmp_path):
    import numpy as np

    broken = _nifti_folder(tmp_path / "data", np.nan)
    output = tmp_path / "masks"
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", os.path.join(CONFIGS, "inference.yaml"),
               "--input_path", str(tmp_path / "data" / "images"), "--output_dir", str(output), "--num_classes", "2"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {broken} has 1 NaN or infinite values")
    assert not output.exists() or not any(output.rglob("*.nii.gz"))


def test_training_stops_at_the_first_non_finite_loss_naming_the_iteration_and_term():
    import pytest
    import torch
    from ignite.engine import Engine
    from monai.bundle import ConfigParser

    from scripts.handlers import StopOnNonFiniteLoss

    losses = iter([1.0, 0.5, float("nan")])
    engine = Engine(lambda engine, batch: {"loss": torch.tensor(1.0), "scalars": {
        "loss/total": 1.0, "loss/cps": next(losses), "lambda": float("nan")}})   # lambda is no loss: not checked
    StopOnNonFiniteLoss().attach(engine)
    with pytest.raises(FloatingPointError, match=r"non-finite loss at iteration 3 \(epoch 1\): loss/cps = nan"):
        engine.run([0, 1, 2, 3])
    parser = ConfigParser()
    parser.read_config(os.path.join(CONFIGS, "train.yaml"))
    for stage in ("pretrain", "train"):   # both stages stop, before the monitoring writes that epoch's checkpoint
        targets = [handler["_target_"] for handler in parser[f"{stage}#handlers"]]
        assert targets.index("scripts.handlers.StopOnNonFiniteLoss") < targets.index("scripts.monitoring.StageMonitoring")


@pytest.mark.parametrize("amp, advice", [(False, r"Lower --learning_rate\."),
                                         (True, r"The step ran in bfloat16 autocast on .*: rerun with --amp false")])
def test_nan_gradients_from_a_finite_loss_stop_training_before_any_weight_changes(amp, advice):
    import torch
    from monai.engines import SupervisedTrainer

    from scripts.training_step import optimizer_step

    network = torch.nn.Linear(2, 1)
    before = [p.detach().clone() for p in network.parameters()]
    optimizer = torch.optim.Adam(network.parameters())
    engine = SupervisedTrainer("cpu", 1, [], network, optimizer, torch.nn.MSELoss(), amp=amp)
    engine.scaler = torch.amp.GradScaler("cuda", enabled=False) if amp else None  # what run() leaves on a CPU
    engine.state.iteration, engine.state.epoch = 3, 1
    images = torch.ones(4, 2)
    logits = network(images)
    loss = torch.sqrt((logits * 0.0).square().sum())   # 0, with an infinite derivative times 0: NaN gradients
    with pytest.raises(FloatingPointError, match=r"non-finite gradients at iteration 3 \(epoch 1\) from a finite loss "
                       rf"\(0\), in 2 of 2 parameter tensors \(first: network.weight\); no optimizer stepped\..*{advice}"):
        optimizer_step(engine, images, None, logits, loss, [optimizer])
    assert all(torch.equal(a, b) for a, b in zip(before, network.parameters()))


@pytest.mark.parametrize("mask_affine, message", [
    (np.diag([-1.0, 1.0, 1.0, 1.0]), r"axis directions .* \(an axis flipped or swapped\)"),
    (np.diag([1.0, 1.0, 3.0, 1.0]), r"spacing \[1.0, 1.0, 3.0\] against the image's \[1.0, 1.0, 1.0\]"),
    (np.array([[1, 0, 0, 5.0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), r"origin \[5.0, 0.0, 0.0\]"),
])
def test_a_mask_on_another_grid_than_its_volume_is_refused_naming_both(tmp_path, mask_affine, message):
    import nibabel as nib

    from scripts.datasets import prepare

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for index in range(6):
        mask = np.zeros((8, 8, 8), np.uint8)
        mask[2:6, 2:6, 2:6] = 1
        nib.save(nib.Nifti1Image(np.random.rand(8, 8, 8).astype(np.float32), np.eye(4)),
                 str(tmp_path / "images" / f"case{index}.nii.gz"))
        nib.save(nib.Nifti1Image(mask, mask_affine if index == 3 else np.eye(4)), str(tmp_path / "masks" / f"case{index}.nii.gz"))
    with pytest.raises(DatasetError, match=rf"mask {tmp_path / 'masks' / 'case3.nii.gz'} does not lie on its image's "
                                           rf"grid \({tmp_path / 'images' / 'case3.nii.gz'}\): {message}"):
        prepare("folder", str(tmp_path), str(tmp_path / "prepared"), num_classes=2)


@pytest.mark.parametrize("shape, overlays, expected", [
    ((16, 16, 8), [], "is a 3D image, but the network is 2D: for volumes, add 'bundle/configs/datasets/volumes.yaml'"),
    ((16, 16), ["datasets/volumes.yaml"], "is a 2D image, but the network is 3D: for 2D images, leave"),
])
def test_images_of_another_dimension_than_the_network_name_the_overlay_that_fits(tmp_path, shape, overlays, expected):
    import nibabel as nib
    from monai.bundle import ConfigParser

    for folder in ("images", "masks"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        for index in range(6):
            array = np.zeros(shape, np.float32 if folder == "images" else np.uint8)
            array[4:9, 4:9] = 1
            nib.save(nib.Nifti1Image(array, np.eye(4)), str(tmp_path / "data" / folder / f"case{index}.nii.gz"))
    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, name) for name in ("train.yaml", *overlays)])
    for key, value in {"dataset_dir": str(tmp_path / "data"), "output_dir": str(tmp_path / "eval"),
                       "label_fraction": 100, "num_classes": 2}.items():
        parser[key] = value
    with pytest.raises(Exception) as caught:
        parser.get_parsed_content("train#labeled_dataset")
    assert re.search(rf"case\d\.nii\.gz {re.escape(expected)}", str(own_error(caught.value)))


def test_wrong_reader_options_and_an_output_folder_that_is_a_file_are_named(tmp_path):
    from helpers import write_folder_dataset
    from scripts.atomic import prepare_output_folder
    from scripts.datasets import prepare

    write_folder_dataset(tmp_path / "data", num_images=12)
    for options, expected in (
        ({"mask_sufix": "_mask"}, "dataset_options 'mask_sufix': the folder layout has no such option; did you mean "
                                  "'mask_suffix'?"),
        ("mask_suffix _mask", "dataset_options must be a mapping such as"),
        ({"group_pattern": "(case"}, "group_pattern '(case' is not a valid regular expression"),
    ):
        with pytest.raises(DatasetError, match=re.escape(expected)):
            prepare("folder", str(tmp_path / "data"), str(tmp_path / "prepared"), num_classes=2, options=options)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(NotADirectoryError, match="a_file is a file, not a folder"):
        prepare_output_folder(tmp_path / "a_file")


def test_a_full_disk_names_the_file_and_leaves_no_empty_or_truncated_file(tmp_path, monkeypatch):
    import errno

    import torch
    from monai.data import PILWriter

    from scripts.atomic import atomic_write
    from scripts.inference_outputs import atomic_writer

    def full_disk(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    kept = tmp_path / "model.pt"
    kept.write_bytes(b"earlier")
    with pytest.raises(OSError, match=rf"no space left on the device of {tmp_path}: {kept} was not written"):
        atomic_write(kept, full_disk)
    assert kept.read_bytes() == b"earlier" and os.listdir(tmp_path) == ["model.pt"]

    mask = torch.tensor([[0, 1], [2, 1]], dtype=torch.uint8)
    writer = atomic_writer(".png")(output_dtype=np.uint8)
    writer.set_data_array(mask, channel_dim=None)
    writer.write(str(tmp_path / "case_seg.png"))
    reference = PILWriter(output_dtype=np.uint8)
    reference.set_data_array(mask, channel_dim=None)
    reference.write(str(tmp_path / "reference.png"))
    assert (tmp_path / "case_seg.png").read_bytes() == (tmp_path / "reference.png").read_bytes()
    monkeypatch.setattr(PILWriter, "write", lambda self, filename, **kwargs: full_disk(filename))
    with pytest.raises(OSError, match="no space left"):
        writer.write(str(tmp_path / "other_seg.png"))
    assert sorted(os.listdir(tmp_path)) == ["case_seg.png", "model.pt", "reference.png"]
