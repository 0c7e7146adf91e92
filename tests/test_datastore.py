"""Training from labeled images given from outside, as MONAI Label's BundleTrainTask gives them."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers import write_folder_dataset, HANG_TIMEOUT
from scripts.datasets.datastore import datastore_datalist
from scripts.datasets.splits import DatasetError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "bundle", "configs")


def make_datastore(tmp_path, num_images=8, num_labeled=3, size=32):
    """A MONAI Label local datastore: images in its folder, final labels in labels/final with the same names."""
    write_folder_dataset(tmp_path / "source", num_images=num_images, size=size)
    store = tmp_path / "store"
    (store / "labels" / "final").mkdir(parents=True)
    labeled = []
    for i, name in enumerate(sorted(os.listdir(tmp_path / "source" / "images"))):
        shutil.copy(tmp_path / "source" / "images" / name, store / name)
        if i < num_labeled:
            shutil.copy(tmp_path / "source" / "masks" / name, store / "labels" / "final" / name)
            labeled.append({"image": str(store / name), "label": str(store / "labels" / "final" / name)})
    return store, labeled


def test_unlabeled_images_are_the_datastore_images_without_labels(tmp_path):
    store, labeled = make_datastore(tmp_path)
    datalist = datastore_datalist(labeled[:2], num_classes=3)   # the third labeled image is MONAI Label's validation
    assert datalist["labeled"] == labeled[:2] and datalist["validation"] == [] and datalist["test"] == []
    assert sorted(os.path.basename(i["image"]) for i in datalist["unlabeled"]) == [f"case{i:03d}.png" for i in range(3, 8)]
    half = datastore_datalist(labeled[:3], num_classes=3, label_fraction=50, seed=1)  # 2 of 3 keep their labels
    assert len(half["labeled"]) == 2 and len(half["unlabeled"]) == 6 and all("label" not in i for i in half["unlabeled"])
    assert {i["image"] for i in half["labeled"]} < {i["image"] for i in labeled[:3]}
    with pytest.raises(DatasetError, match="no labeled images"):
        datastore_datalist([], num_classes=3)
    Image.fromarray(np.full((32, 32), 7, np.uint8)).save(labeled[0]["label"])
    with pytest.raises(DatasetError, match=r"case000.png has label values \[7\]"):
        datastore_datalist(labeled[:2], num_classes=3)


BUNDLE_TRAIN_TASK = """
import json, sys
import monai.bundle
args = json.loads(sys.argv[1])
monai.bundle.run(run_id="run", init_id=None, final_id=None, meta_file=args.pop("meta_file"),
                 config_file=args.pop("config_file"), **args)
"""


def monai_label_train_handlers(weights):
    """BundleTrainTask (monailabel 0.8) reads the unparsed `train#handlers` and, where no CheckpointLoader is
    there, puts one first that loads the bundle's weights into the network."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(os.path.join(CONFIGS, "train.yaml"))
    handlers = parser.get("train#handlers", [])
    if os.path.exists(weights) and not [h for h in handlers if h.get("_target_") == "CheckpointLoader"]:
        handlers.insert(0, {"_target_": "CheckpointLoader", "load_path": weights, "load_dict": {"model": "$@network"},
                            "strict": True})
    return handlers


def run_as_monai_label(overrides, cwd):
    import json

    result = subprocess.run([sys.executable, "-c", BUNDLE_TRAIN_TASK, json.dumps(overrides)], cwd=cwd,
                            capture_output=True, text=True, timeout=HANG_TIMEOUT)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.slow
def test_training_as_monai_label_runs_it(tmp_path):
    """The overrides of the bundle app's train task (BundleTrainTask.run_single_gpu of monailabel 0.8, with the
    train panel's values set on their ids): bundle_root, max_epochs, the labeled and validation lists, device,
    handlers and displayable_configs; the unlabeled images are found by the config. A second request starts
    from the weights the first one wrote, and from its stage-1 teacher."""
    store, labeled = make_datastore(tmp_path)
    panel = {"pretrain_epochs": 1, "rounds": 1, "lambda_max": 1.0, "datastore_label_fraction": 100}
    overrides = {
        "meta_file": os.path.join(CONFIGS, "metadata.json"), "config_file": os.path.join(CONFIGS, "train.yaml"),
        "bundle_root": str(tmp_path / "bundle"), "max_epochs": 1, "device": "cpu",
        "train#dataset#data": labeled[:2], "validate#dataset#data": labeled[2:],
        "spatial_size": [32, 32], "batch_size": 2, "labeled_batch_size": 1, "epoch_length": 2,
        "val_interval": 1, "displayable_configs": panel, **panel,
    }
    weights = tmp_path / "bundle" / "models" / "model.pt"
    for request in ("first", "second"):
        overrides["train#handlers"] = monai_label_train_handlers(str(weights))
        returncode, log = run_as_monai_label(overrides, tmp_path)
        assert returncode == 0, log[-3000:]
        assert "datastore: 2 labeled and 5 unlabeled images" in log and "no test split" in log
        assert weights.is_file()
        assert ("Restored all variables from" in log) == (request == "second"), log[-3000:]
        # stage 1 runs once: the second request retrains from the teacher the first one wrote
        reused = f"TeacherPretrainer skipped: its network is loaded from {tmp_path / 'bundle' / 'models' / 'teacher.pt'}"
        assert (reused in log) == (request == "second"), log[-3000:]
    assert not (tmp_path / "bundle" / "eval" / "synthetic_data").exists()


@pytest.mark.slow
def test_panel_settings_that_an_app_does_not_apply_stop_the_run(tmp_path):
    """MONAI Label's stock bundle train task sets the panel's values on displayable_configs and its max_epochs
    on the trainer alone: the lambda ramp would keep its length and the rounds their number. Refused."""
    store, labeled = make_datastore(tmp_path)
    base = {
        "meta_file": os.path.join(CONFIGS, "metadata.json"), "config_file": os.path.join(CONFIGS, "train.yaml"),
        "bundle_root": str(tmp_path / "bundle"), "device": "cpu", "train#dataset#data": labeled[:2],
        "validate#dataset#data": labeled[2:],
    }
    returncode, log = run_as_monai_label({**base, "train#trainer#max_epochs": 1}, tmp_path)
    assert returncode != 0 and "settings {'max_epochs': 1} reached the bundle's displayable_configs (or the trainer) " \
        "but not the ids it trains with ({'max_epochs': 200})" in log, log[-3000:]
    panel = {"pretrain_epochs": 1, "rounds": 3, "lambda_max": 1.0, "datastore_label_fraction": 100}
    returncode, log = run_as_monai_label({**base, "displayable_configs": panel}, tmp_path)
    assert returncode != 0 and "{'pretrain_epochs': 1, 'rounds': 3}" in log and "python -m scripts.label_server" in log
    assert not (tmp_path / "bundle" / "models").exists()  # refused before anything was written
