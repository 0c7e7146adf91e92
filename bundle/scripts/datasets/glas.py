"""GlaS, the Warwick QU release (Sirinukunwattana et al., MedIA 2017).

Layout: ``train_N.bmp`` / ``train_N_anno.bmp`` (85), ``testA_N*`` (60), ``testB_N*`` (20) and ``Grade.csv``
in one folder (``Warwick QU Dataset (Released 2016_07_08)`` below ``root``, or ``root`` itself). Gland
instance annotations are binarised (any instance = gland) into ``<output_dir>/masks/*.png``. The official
train/test split is kept (testA + testB = test); validation is carved from the training images per patient
(``Grade.csv``'s patient ID), so one patient's images never straddle training and validation.
"""

from __future__ import annotations

import csv
import os
import re

import numpy as np

from .files import convert, find_folder, read_picture, save_png
from .splits import Case, DatasetError

NUM_CLASSES = 2
IMAGE = re.compile(r"^(train|testA|testB)_(\d+)\.bmp$", re.IGNORECASE)


def read_patients(path: str) -> dict[str, str]:
    """``{image name: patient id}`` from ``Grade.csv`` (columns ``name`` and ``patient ID``)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = [column.strip().lower() for column in rows[0]] if rows else []
    if "name" not in header or "patient id" not in header:
        raise DatasetError(f"{path}: expected the columns 'name' and 'patient ID', found {rows[0] if rows else []}")
    name, patient = header.index("name"), header.index("patient id")
    return {row[name].strip(): row[patient].strip() for row in rows[1:] if len(row) > max(name, patient)}


def instance_mask(annotation: str) -> np.ndarray:
    """0/1 gland mask from an instance annotation (0 background, 1..N glands)."""
    values = read_picture(annotation)
    if values.ndim == 3:  # saved as colour: a gland is any non-black pixel
        values = values.max(axis=-1)
    return (values > 0).astype(np.uint8)


def find_cases(root: str, output_dir: str) -> tuple[list[Case], dict[str, list[str]]]:
    folder = find_folder(
        root, lambda f: any(IMAGE.match(name) for name in os.listdir(f)),
        "GlaS images (train_N.bmp, testA_N.bmp, testB_N.bmp)",
    )
    grades = os.path.join(folder, "Grade.csv")
    patients = read_patients(grades) if os.path.isfile(grades) else {}
    cases, splits = [], {"train": [], "test": []}
    for name in sorted(os.listdir(folder)):
        match = IMAGE.match(name)
        if match is None:
            continue
        stem = name[:-4]
        annotation = os.path.join(folder, f"{stem}_anno.bmp")
        if not os.path.isfile(annotation):
            raise DatasetError(f"GlaS image {os.path.join(folder, name)} has no annotation {annotation}")
        mask = convert(
            annotation, os.path.join(output_dir, "masks", f"{stem}.png"),
            lambda tmp, a=annotation: save_png(instance_mask(a), tmp),
        )
        split = "train" if match.group(1).lower() == "train" else "test"
        group = f"patient_{patients[stem]}" if split == "train" and stem in patients else stem
        cases.append(Case(image=os.path.join(folder, name), label=mask, group=group))
        if group not in splits[split]:
            splits[split].append(group)
    return cases, splits
