"""Training lists from labeled images given from outside, as MONAI Label's ``BundleTrainTask`` gives them.

MONAI Label sets ``train#dataset#data`` to its datastore's labeled images (``{"image", "label"}``) and
``validate#dataset#data`` to its validation split; it does not pass the unlabeled images. They are the
other images in the labeled images' folders that have no label in the labels' folders (so that validation
images, which have labels, are not trained on as unlabeled images either).
"""

from __future__ import annotations

import logging
import math
import os
import random

from .files import check_items
from .folder import images_by_stem
from .splits import DatasetError

logger = logging.getLogger(__name__)


def datastore_datalist(
    labeled: list[dict], num_classes: int, label_fraction: float = 100.0, seed: int = 0
) -> dict[str, list[dict]]:
    """``{"labeled", "unlabeled", "validation": [], "test": []}``: the given labeled images (checked), and
    as unlabeled every image beside them whose name has no label file beside their labels. With
    ``label_fraction`` below 100, only ``ceil(N * label_fraction / 100)`` of the N labeled images (drawn with
    ``seed``) keep their labels; the others join the unlabeled images."""
    if not labeled:
        raise DatasetError("no labeled images were given (train#dataset#data is empty): label at least one image.")
    if not 0 < float(label_fraction) <= 100:
        raise DatasetError(f"datastore_label_fraction must be in (0, 100], got {label_fraction}.")
    check_items(labeled, num_classes)
    folders = sorted({os.path.dirname(os.path.realpath(item["image"])) for item in labeled})
    label_folders = {os.path.dirname(os.path.realpath(item["label"])) for item in labeled}
    has_label = {stem for folder in label_folders for stem in images_by_stem(folder)}
    unlabeled = [
        {"image": path}
        for folder in folders
        for stem, path in images_by_stem(folder).items()
        if stem not in has_label
    ]
    check_items(unlabeled, num_classes)
    keep = math.ceil(len(labeled) * float(label_fraction) / 100)
    kept = sorted(random.Random(seed).sample(range(len(labeled)), keep))
    unlabeled += [{"image": item["image"]} for i, item in enumerate(labeled) if i not in kept]
    labeled = [dict(labeled[i]) for i in kept]
    logger.info(f"datastore: {len(labeled)} labeled and {len(unlabeled)} unlabeled images in {', '.join(folders)}")
    if not unlabeled:
        raise DatasetError(f"no unlabeled images beside the labeled ones in {', '.join(folders)}.")
    return {"labeled": labeled, "unlabeled": unlabeled, "validation": [], "test": []}
