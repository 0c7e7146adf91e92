"""GlaS (Sirinukunwattana et al., MedIA 2017), in either of two releases.

* The Warwick QU release: ``train_N.bmp`` / ``train_N_anno.bmp`` (85), ``testA_N*`` (60), ``testB_N*`` (20) and
  ``Grade.csv`` in one folder (``Warwick QU Dataset (Released 2016_07_08)`` below ``root``, or ``root``
  itself). Gland instance annotations are binarised (any instance = gland).
* A PNG release: binary masks (0/255) ``train_N.png``, ``testA_N.png``, ``testB_N.png`` in a ``labels``
  folder (at most two levels below ``root``), and the images of the same names in any other folders below
  ``root`` (folders whose names end in ``labels`` hold masks and are skipped).

Masks are written as 0/1 label maps into ``<output_dir>/masks/*.png``. The official train/test split is kept
(testA + testB = test); validation is carved from the training images per patient where ``Grade.csv`` gives
the patients, else per image.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable

import numpy as np

from .files import binary_mask, convert, find_folder, read_picture, save_png
from .splits import Case, DatasetError

NUM_CLASSES = 2
IMAGE = re.compile(r"^(train|testA|testB)_(\d+)\.bmp$", re.IGNORECASE)
PNG_IMAGE = re.compile(r"^(train|testA|testB)_(\d+)\.png$", re.IGNORECASE)


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
    try:
        folder = find_folder(root, lambda f: any(IMAGE.match(name) for name in os.listdir(f)), "GlaS BMP images")
    except DatasetError:
        return _png_release(root, output_dir)
    grades = os.path.join(folder, "Grade.csv")
    patients = read_patients(grades) if os.path.isfile(grades) else {}
    pairs = {}
    for name in sorted(os.listdir(folder)):
        if IMAGE.match(name) is None:
            continue
        stem = name[:-4]
        annotation = os.path.join(folder, f"{stem}_anno.bmp")
        if not os.path.isfile(annotation):
            raise DatasetError(f"GlaS image {os.path.join(folder, name)} has no annotation {annotation}")
        pairs[stem] = (os.path.join(folder, name), lambda tmp, a=annotation: save_png(instance_mask(a), tmp), annotation)
    return _cases(pairs, output_dir, patients)


def _png_release(root: str, output_dir: str) -> tuple[list[Case], dict[str, list[str]]]:
    labels = find_folder(
        root, lambda f: os.path.basename(f) == "labels" and any(PNG_IMAGE.match(n) for n in os.listdir(f)),
        "GlaS data: neither the Warwick release (train_N.bmp with train_N_anno.bmp) nor the PNG release "
        "(masks train_N.png, testA_N.png, testB_N.png in a folder named labels)",
    )
    images: dict[str, str] = {}
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.lower().endswith("labels"))
        for name in sorted(names):
            if PNG_IMAGE.match(name):
                stem, path = name[:-4], os.path.join(folder, name)
                if stem in images:
                    raise DatasetError(f"two GlaS images named {name}: {images[stem]} and {path}")
                images[stem] = path
    masks = {name[:-4] for name in os.listdir(labels) if PNG_IMAGE.match(name)}
    orphans = sorted(masks - set(images))
    if orphans:
        raise DatasetError(
            f"GlaS mask {os.path.join(labels, orphans[0] + '.png')} has no image of its name below {root} "
            f"({len(orphans)} in all)"
        )
    pairs = {}
    for stem, image in sorted(images.items()):
        mask = os.path.join(labels, f"{stem}.png")
        if stem not in masks:
            raise DatasetError(f"GlaS image {image} has no mask {mask}")
        pairs[stem] = (image, lambda tmp, m=mask: save_png(binary_mask(read_picture(m), m, {255}), tmp), mask)
    return _cases(pairs, output_dir, patients={})


def _cases(
    pairs: dict[str, tuple[str, Callable[[str], None], str]], output_dir: str, patients: dict[str, str]
) -> tuple[list[Case], dict[str, list[str]]]:
    """Cases from ``{stem: (image, write the 0/1 mask to a path, the mask's source)}``: masks written into
    ``output_dir/masks``, training images grouped by patient where ``patients`` names one."""
    cases, splits = [], {"train": [], "test": []}
    for stem, (image, write_mask, source) in pairs.items():
        mask = convert(source, os.path.join(output_dir, "masks", f"{stem}.png"), write_mask)
        split = "train" if stem.lower().startswith("train") else "test"
        group = f"patient_{patients[stem]}" if split == "train" and stem in patients else stem
        cases.append(Case(image=image, label=mask, group=group, label_source=source))
        if group not in splits[split]:
            splits[split].append(group)
    return cases, splits
