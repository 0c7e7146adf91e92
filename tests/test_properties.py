"""MONAI's own bundle check, as model-zoo's CI runs it: ``ConfigWorkflow.check_properties()`` finds every
required property id of the train, infer and evaluate workflows, and every optional one that a config uses
is used by reference to its conventional id."""

import os

import numpy as np
import pytest
from monai.bundle import ConfigWorkflow
from PIL import Image

import publisher_layouts as layouts
from helpers import VOLUME_LA

BUNDLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bundle")
SEMI_SUPERVISED = sorted(set(os.listdir(os.path.join(BUNDLE, "configs", "baselines")))
                         - {"supervised.yaml", "semi_supervised.yaml", "constant.yaml"})
BASELINES = [["baselines/supervised.yaml"], ["baselines/constant.yaml"],
             *[["baselines/semi_supervised.yaml", f"baselines/{name}"] for name in SEMI_SUPERVISED]]  # after
             # the wiring that the semi-supervised ones share


def workflow(tmp_path, workflow_type, configs, **overrides):
    """The bundle's workflow of ``configs`` with its outputs in ``tmp_path``, initialised."""
    folders = {"output_dir": str(tmp_path / "eval")}
    if workflow_type == "infer":
        images = tmp_path / "images"
        images.mkdir()
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(images / "case.png")
        folders["dataset_dir"] = str(images)
    else:
        folders["ckpt_dir"] = str(tmp_path / "models")
    flow = ConfigWorkflow(
        config_file=[os.path.join(BUNDLE, "configs", name) for name in configs],
        meta_file=os.path.join(BUNDLE, "configs", "metadata.json"),
        logging_file=os.path.join(BUNDLE, "configs", "logging.conf"),
        workflow_type=workflow_type, **{**folders, **overrides},
    )
    flow.initialize()
    return flow


@pytest.mark.parametrize("workflow_type, configs", [
    ("train", ["train.yaml"]),
    ("train", ["train.yaml", "variants/student_warmup.yaml"]),
    *[("train", ["train.yaml", *overlays]) for overlays in BASELINES],
    ("infer", ["inference.yaml"]),
    ("infer", ["inference.yaml", "datasets/acdc.yaml"]),
    ("eval", ["train.yaml", "evaluate.yaml"]),
])
def test_every_workflow_passes_monai_property_check(tmp_path, workflow_type, configs):
    assert workflow(tmp_path, workflow_type, configs).check_properties() == []


def test_the_3d_overlay_passes_monai_property_check(tmp_path):
    layouts.write_la_h5(tmp_path / "LA")
    flow = workflow(tmp_path, "train", ["train.yaml", *VOLUME_LA], dataset_dir=str(tmp_path / "LA"),
                    num_labeled=2)
    assert flow.check_properties() == []


def test_the_property_check_fails_when_a_required_id_is_removed(tmp_path):
    flow = workflow(tmp_path, "train", ["train.yaml"])
    del flow.parser["train"]["inferer"]
    with pytest.raises(KeyError, match="train_inferer"):
        flow.check_properties()


@pytest.mark.parametrize("key, value, wrong", [
    ("validate#evaluator#inferer", "@inferer", "val_inferer"),
    ("validate#evaluator#postprocessing", "@postprocessing", "val_postprocessing"),
    ("validate#dataset#transform", "@eval_transforms", "val_preprocessing"),
])
def test_the_property_check_fails_when_an_optional_id_is_bypassed(tmp_path, key, value, wrong):
    flow = workflow(tmp_path, "train", ["train.yaml"])
    flow.parser[key] = value
    assert flow.check_properties() == [wrong]
