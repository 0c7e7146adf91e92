"""Datasets as their publishers ship them, turned into a MONAI datalist with reproducible splits.

``prepare`` reads a publisher's layout (``SOURCES``), converts annotations to label maps (0..K-1) where the
published encoding differs, chooses splits and the labeled subset (``splits.make_datalist``), checks every
file and writes ``datalist.json``. The same call runs from the bundle configs and from
``python -m scripts.datasets prepare NAME --root DIR``.
"""

from __future__ import annotations

import difflib
import inspect
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monai.data import load_decathlon_datalist

from ..atomic import atomic_json_dump
from . import decathlon, folder, glas, hmeps, la, nnunet, ph2, ssl4mis
from .files import check_datalist, check_items
from .splits import Case, DatasetError, make_datalist

PARTS = ("labeled", "unlabeled", "validation", "test")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSource:
    """How to read one publisher's layout: ``find_cases(root, output_dir, **options)`` returns the cases
    and the groups the publisher assigns to splits; missing splits are carved with these fractions."""

    find_cases: Callable[..., tuple]
    num_classes: int | None  # None: the user says (generic folder), or the manifest (declared_classes)
    summary: str
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    options: Mapping[str, Any] = field(default_factory=dict)
    declared_classes: Callable[[str], int] | None = None  # root -> the classes its manifest declares


SOURCES = {
    "folder": DatasetSource(
        folder.find_cases, None, "images/ + masks/ with optional train/val/test lists", test_fraction=0.1
    ),
    "acdc": DatasetSource(
        folder.find_cases, 4, "ACDC 2D slices (folder layout), split per patient", test_fraction=0.1,
        options={"group_pattern": r"^(patient\d+)"},
    ),
    "glas": DatasetSource(glas.find_cases, glas.NUM_CLASSES, "GlaS, Warwick QU release (BMP)"),
    "ph2": DatasetSource(ph2.find_cases, ph2.NUM_CLASSES, "PH2 dermoscopy (BMP)"),
    "hmeps": DatasetSource(hmeps.find_cases, hmeps.NUM_CLASSES, "HMEPS pupil frames (JPEG + PNG)"),
    "la": DatasetSource(la.find_cases_preprocessed, la.NUM_CLASSES, "left atrium, preprocessed h5 release"),
    "la_challenge": DatasetSource(la.find_cases_challenge, la.NUM_CLASSES, "left atrium, challenge NRRD release"),
    "heart": DatasetSource(
        decathlon.find_cases, la.NUM_CLASSES, "left atrium, Decathlon Task02_Heart",
        options={"test_images_unlabeled": False},
    ),
    "decathlon": DatasetSource(
        decathlon.find_cases, None, "any Medical Segmentation Decathlon task (dataset.json)",
        declared_classes=decathlon.declared_classes,
    ),
    "nnunet": DatasetSource(
        nnunet.find_cases, None, "nnU-Net v2 raw dataset (dataset.json, imagesTr, labelsTr, imagesTs)",
        declared_classes=decathlon.declared_classes,
    ),
    "ssl4mis_acdc": DatasetSource(
        ssl4mis.find_cases, 4, "ACDC as SSL4MIS ships it (h5 slices and volumes, lists)",
    ),
}


def percent(value: float | str) -> float:
    """A label fraction in percent from a number or a string such as ``"5"`` or ``"5%"``."""
    try:
        return float(str(value).strip().rstrip("%")) if isinstance(value, str) else float(value)
    except ValueError:
        raise DatasetError(f"label_fraction must be a number of percent such as 5, got {value!r}.") from None


def source_of(dataset: str) -> DatasetSource:
    if dataset not in SOURCES:
        raise DatasetError(f"unknown dataset '{dataset}'; known: {', '.join(SOURCES)}")
    return SOURCES[dataset]


def check_options(dataset: str, options: Any) -> None:
    """Refuse ``dataset_options`` that are not a mapping, or that name an option the layout's reader lacks."""
    if not isinstance(options, Mapping):
        raise DatasetError(
            f"dataset_options must be a mapping such as \"{{'mask_suffix': '_mask'}}\", got {options!r}.")
    parameters = inspect.signature(SOURCES[dataset].find_cases).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    known = [name for name in parameters if name not in ("root", "output_dir")]
    for name in options:
        if name not in known:
            nearest = difflib.get_close_matches(str(name), known, n=1)
            hint = f"did you mean '{nearest[0]}'? " if nearest else ""
            raise DatasetError(f"dataset_options '{name}': the {dataset} layout has no such option; {hint}"
                               f"its options: {', '.join(known) or 'none'}.")


def prepare(
    dataset: str,
    root: str,
    output_dir: str,
    num_classes: int | None = None,
    label_fraction: float = 100.0,
    seed: int = 0,
    num_labeled: int | None = None,
    labeled_selection: str = "seeded",
    split_seed: int = 0,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
    check: bool = True,
    options: Mapping[str, Any] | None = None,
) -> dict[str, list[dict]]:
    """The datalist ``{"labeled", "unlabeled", "validation", "test"}`` of ``root``, also written (with the
    settings that made it) to ``<output_dir>/datalist.json``.

    ``labeled_selection`` "seeded" draws the labeled groups with ``seed``; "first" takes the first ones of
    the training list. ``options`` go to the dataset's reader (e.g. ``subset`` for hmeps, ``train_list``
    or ``group_pattern`` for folder).
    """
    source = source_of(dataset)
    label_fraction = percent(label_fraction)
    if num_labeled is None and not 0 < label_fraction <= 100:
        raise DatasetError(f"label_fraction must be in (0, 100], got {label_fraction}.")
    if source.declared_classes is not None:
        declared = source.declared_classes(os.path.abspath(root))
        if num_classes not in (None, declared):
            raise DatasetError(
                f"the dataset.json in {root} declares {declared} labels (with background) but num_classes is "
                f"{num_classes}: set num_classes {declared}."
            )
        num_classes = declared
    if source.num_classes is not None and num_classes not in (None, source.num_classes):
        raise DatasetError(
            f"{dataset} has {source.num_classes} classes (with background) but num_classes is {num_classes}: "
            f"use the overlay bundle/configs/datasets/{dataset}.yaml or set num_classes {source.num_classes}."
        )
    num_classes = num_classes or source.num_classes
    if num_classes is None:
        raise DatasetError(f"num_classes must be given for the '{dataset}' layout.")
    if labeled_selection not in ("seeded", "first"):
        raise DatasetError(f"labeled_selection must be 'seeded' or 'first', got '{labeled_selection}'.")
    root, output_dir = os.path.abspath(root), os.path.abspath(output_dir)
    check_options(dataset, options or {})
    cases, splits = source.find_cases(root, output_dir, **{**source.options, **(options or {})})
    if labeled_selection == "first" and "train" not in splits:
        raise DatasetError(f"labeled_selection 'first' needs a training list (train.list) in {root}.")
    datalist = make_datalist(
        cases,
        splits,
        label_fraction=label_fraction,
        seed=seed,
        num_labeled=num_labeled,
        labeled_order=splits["train"] if labeled_selection == "first" else None,
        val_fraction=source.val_fraction if val_fraction is None else val_fraction,
        test_fraction=source.test_fraction if test_fraction is None else test_fraction,
        split_seed=split_seed,
        source=root,
    )
    if check:  # every mask a split could use, also of the images drawn as unlabeled this time
        check_items([_item_with_sources(case) for case in cases], num_classes)
        check_datalist(datalist, num_classes, root)
    settings = {
        "dataset": dataset, "root": root, "num_classes": num_classes, "label_fraction": label_fraction,
        "num_labeled": num_labeled, "labeled_selection": labeled_selection, "seed": seed, "split_seed": split_seed,
        "options": dict(options or {}),
    }
    path = os.path.join(output_dir, "datalist.json")
    atomic_json_dump({**settings, **datalist}, path)
    counts = ", ".join(
        f"{len(datalist[p])} {p} ({len({i['group'] for i in datalist[p]})} groups)" for p in PARTS
    )
    logger.info(f"{dataset} datalist: {counts} -> {path}")
    return datalist


def _item_with_sources(case: Case) -> dict:
    item = {"image": case.image, "image_source": case.image_source}
    if case.label:
        item.update(label=case.label, label_source=case.label_source)
    return item


def read_datalist(path: str, num_classes: int, check: bool = True) -> dict[str, list[dict]]:
    """A datalist JSON written by ``prepare`` (paths absolute or relative to the file's folder)."""
    if not os.path.isfile(path):
        raise DatasetError(f"datalist file not found: {path}")
    with open(path) as f:
        keys = set(json.load(f))
    missing = [p for p in PARTS if p not in keys]
    if missing:
        raise DatasetError(f"{path} has no {missing} list(s); expected {list(PARTS)}")
    datalist = {p: load_decathlon_datalist(path, is_segmentation=True, data_list_key=p) for p in PARTS}
    if check:
        check_items([item for part in PARTS for item in datalist[part]], num_classes)
        check_datalist(datalist, num_classes, path)
    return datalist
