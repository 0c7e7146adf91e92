"""Medical Segmentation Decathlon tasks as published (Antonelli et al., Nat. Commun. 2022): ``dataset.json``
with ``modality``, ``labels`` (``{"0": "background", "1": ...}``), ``training`` (image/label pairs) and
``test`` (images without labels), used in place. Multi-modal tasks ship 4D NIfTI (channels last), which
the bundle's transforms read as channels.

Every case is its own group unless ``group_pattern`` groups case ids (as in the folder layout). The test
images have no labels: they join training as unlabeled images (``test_images_unlabeled: false`` leaves
them out), and the test split is carved from the labeled cases.
"""

from __future__ import annotations

import json
import os

from monai.data import load_decathlon_datalist

from ..flags import as_bool
from .files import find_folder
from .folder import grouping
from .splits import Case, DatasetError

MANIFEST = "dataset.json"


def manifest_folder(root: str) -> str:
    """The folder holding ``dataset.json``, at most two levels below ``root``."""
    return find_folder(root, lambda f: os.path.isfile(os.path.join(f, MANIFEST)), f"{MANIFEST} (dataset manifest)")


def read_manifest(root: str) -> tuple[str, dict]:
    """``(path, content)`` of the dataset's ``dataset.json``."""
    path = os.path.join(manifest_folder(root), MANIFEST)
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as error:
        raise DatasetError(f"cannot read {path}: {error}") from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("labels"), dict):
        raise DatasetError(f"{path} has no 'labels' mapping")
    return path, manifest


def label_values(path: str, labels: dict) -> list[int]:
    """The label values of a manifest's ``labels`` (Decathlon ``{"0": name}`` or nnU-Net ``{name: 0}``),
    which must be 0..K-1: the bundle trains one class per value."""
    if all(str(key).isdigit() for key in labels):
        values = [int(key) for key in labels]
    else:
        values = list(labels.values())
        if any(isinstance(v, (list, tuple)) for v in values):
            raise DatasetError(f"{path} defines region-based labels (lists of values); give one class per value.")
        if "ignore" in labels:
            raise DatasetError(f"{path} has an 'ignore' label (sparse annotation), which this bundle does not train on.")
        named = next(((name, v) for name, v in labels.items() if not isinstance(v, int) or isinstance(v, bool)), None)
        if named:
            raise DatasetError(f"{path}: label '{named[0]}' has the value {named[1]!r}, not an integer; nnU-Net's "
                               f"labels map each name to its integer value, e.g. \"{named[0]}\": 1.")
    if sorted(values) != list(range(len(values))):
        raise DatasetError(f"{path}: label values {sorted(values)} are not consecutive from 0 (background).")
    return values


def declared_classes(root: str) -> int:
    """The number of classes (with background) that the dataset's manifest declares."""
    path, manifest = read_manifest(root)
    return len(label_values(path, manifest["labels"]))


def _case_id(path: str) -> str:
    return os.path.basename(path).split(".")[0]


def find_cases(
    root: str, output_dir: str | None = None, test_images_unlabeled: bool = True, group_pattern: str | None = None
) -> tuple[list[Case], dict[str, list[str]]]:
    path, manifest = read_manifest(root)
    folder, test_images_unlabeled = os.path.dirname(path), as_bool(test_images_unlabeled)
    try:
        items = load_decathlon_datalist(path, is_segmentation=True, data_list_key="training", base_dir=folder)
        tests = (
            load_decathlon_datalist(path, is_segmentation=False, data_list_key="test", base_dir=folder)
            if test_images_unlabeled and manifest.get("test") else []
        )
    except (ValueError, KeyError) as error:
        raise DatasetError(f"cannot read {path}: {error}") from error
    group_of = grouping(group_pattern)
    cases = []
    for item in [*items, *tests]:
        for key in ("image", "label"):
            if key in item and not os.path.isfile(item[key]):
                raise DatasetError(f"{path} lists {item[key]}, which does not exist")
        cases.append(Case(image=item["image"], label=item.get("label"), group=group_of(_case_id(item["image"]))))
    return cases, {}
