"""HMEPS, Human and Mouse Eyes for Pupil Semantic Segmentation (Mazziotti et al., Zenodo 4488164, 2021).

Layout of ``NN_human_mouse_eyes.zip``: ``fullFrames/<name>.jpeg|jpg|png`` (IR frames),
``annotation/png/<stem>.png`` (RGB; the red channel is the pupil, 0 / 255) and
``annotation/annotations.csv`` (one row per frame: ``filename``, the subject ``sub`` and further tags),
in ``root`` or a ``NN_human_mouse_eyes`` folder below it. Pupil masks are written as 0/1 PNG into
``<output_dir>/masks``. ``subset`` keeps ``human`` or ``mouse`` frames: the species is read from a
``species`` or ``exp`` column, else from the file name (a frame where neither names it is an error).
The publisher defines no split: 20 % of the subjects are drawn as test and 10 % as validation with
``split_seed``; frames are grouped by subject, so one eye's video never straddles two splits.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from .files import binary_mask, convert, find_folder, read_picture, save_png
from .splits import Case, DatasetError

NUM_CLASSES = 2
SUBSETS = ("all", "human", "mouse")
FRAME_EXTENSIONS = (".jpeg", ".jpg", ".png")


def pupil_mask(path: str) -> np.ndarray:
    """0/1 pupil mask: the red channel of an RGB annotation (or the only channel of a grey one)."""
    values = read_picture(path)
    return binary_mask(values[..., 0] if values.ndim == 3 else values, path, foreground=(255,))


def species_of(row: dict[str, str]) -> str | None:
    for text in (row.get("species", ""), row.get("exp", ""), row["filename"]):
        text = text.lower()
        for species in ("human", "mouse"):
            if species in text:
                return species
    return None


def read_annotations(path: str, frames: str) -> list[dict[str, str]]:
    """Rows of ``annotations.csv``; without it, one row per frame in ``frames``."""
    if not os.path.isfile(path):
        return [{"filename": name} for name in sorted(os.listdir(frames)) if name.lower().endswith(FRAME_EXTENSIONS)]
    with open(path, newline="") as f:
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(f)]
    if rows and "filename" not in rows[0]:
        raise DatasetError(f"{path}: expected a 'filename' column, found {sorted(rows[0])}")
    return rows


def find_cases(root: str, output_dir: str, subset: str = "all") -> tuple[list[Case], dict[str, list[str]]]:
    if subset not in SUBSETS:
        raise DatasetError(f"HMEPS subset must be one of {SUBSETS}, got '{subset}'.")
    folder = find_folder(root, lambda f: os.path.isdir(os.path.join(f, "fullFrames")), "HMEPS 'fullFrames' folder")
    frames = os.path.join(folder, "fullFrames")
    table = os.path.join(folder, "annotation", "annotations.csv")
    cases = []
    for row in read_annotations(table, frames):
        if subset != "all":
            species = species_of(row)
            if species is None:
                raise DatasetError(
                    f"cannot tell the species of {row['filename']} ({table}): no 'species' or 'exp' column naming "
                    f"human or mouse; use subset 'all'."
                )
            if species != subset:
                continue
        image = os.path.join(frames, row["filename"])
        if not os.path.isfile(image):
            raise DatasetError(f"{table} lists {row['filename']}, which is not in {frames}")
        stem = os.path.splitext(row["filename"])[0]
        annotation = os.path.join(folder, "annotation", "png", f"{stem}.png")
        if not os.path.isfile(annotation):
            raise DatasetError(f"HMEPS frame {image} has no pupil annotation {annotation}")
        mask = convert(
            annotation, os.path.join(output_dir, "masks", f"{stem}.png"), lambda tmp, a=annotation: save_png(pupil_mask(a), tmp)
        )
        group = f"subject_{row['sub']}" if row.get("sub") else stem
        cases.append(Case(image=image, label=mask, group=group))
    if not cases:
        raise DatasetError(f"no HMEPS frames ({subset}) in {frames}")
    return cases, {}
