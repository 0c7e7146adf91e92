"""A generic 2D folder dataset: ``images/`` and ``masks/`` with matching names, turned into a datalist.

Rules (documented in bundle/docs/README.md):

* an image's mask is the file in ``masks/`` with the same name stem (any supported extension); images
  without a mask are unlabeled;
* list files (``train.list``, ``val.list``, ``test.list`` in the dataset folder when not given) hold case
  ids, one a line; an image belongs to the listed id that prefixes its stem (followed by a non-alphanumeric
  character or the end), else it is a case of its own. With a training list, images of no listed id are
  ignored; without one, they form the training split;
* ``group_pattern`` (a regular expression; its first group, or the whole match) maps a case id to a group
  (e.g. a patient); splits and the labeled subset are chosen per group, so a group never straddles them;
* a missing validation or test list is replaced by ``val_fraction``/``test_fraction`` of the training
  groups (at least one each), drawn with ``split_seed`` among groups whose images all have masks;
* the labeled subset is ``max(1, ceil(N * label_fraction / 100))`` of the N training groups, drawn with
  ``seed`` among training groups whose images all have masks; the rest of the training split is unlabeled.

Every draw sorts ids first, so results do not depend on file-system order.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from monai.transforms import LoadImage

IMAGE_EXTENSIONS = (".nii.gz", ".nii", ".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg")


class DatasetError(ValueError):
    """Bad input data: the message names the file or setting at fault."""


def split_extension(filename: str) -> tuple[str, str]:
    """``('case_01', '.nii.gz')`` for ``case_01.nii.gz``; ``(filename, '')`` for unsupported files."""
    lower = filename.lower()
    for ext in IMAGE_EXTENSIONS:
        if lower.endswith(ext):
            return filename[: -len(ext)], ext
    return filename, ""


def _list_images(folder: str) -> dict[str, str]:
    if not os.path.isdir(folder):
        raise DatasetError(f"folder not found: {folder}")
    files: dict[str, str] = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = split_extension(name)
        if not ext or name.startswith("."):
            continue
        if stem in files:
            raise DatasetError(f"two files with the stem '{stem}' in {folder}: {os.path.basename(files[stem])}, {name}")
        files[stem] = os.path.join(folder, name)
    return files


def list_images(path: str) -> list[str]:
    """The supported image files of a folder (sorted), or ``[path]`` for a single file."""
    if os.path.isfile(path):
        return [path]
    images = list(_list_images(path).values())
    if not images:
        raise DatasetError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {path}")
    return images


def _read_list(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise DatasetError(f"list file not found: {path}")
    with open(path) as f:
        ids = [line.strip() for line in f if line.strip()]
    if not ids:
        raise DatasetError(f"list file is empty: {path}")
    return ids


def _case_of(stem: str, ids: Sequence[str]) -> str | None:
    best = None
    for case in ids:
        if stem.startswith(case) and (len(stem) == len(case) or not stem[len(case)].isalnum()):
            if best is None or len(case) > len(best):
                best = case
    return best


def _draw(groups: Sequence[str], count: int, seed: int) -> list[str]:
    return sorted(random.Random(seed).sample(sorted(groups), count))


def folder_datalist(
    dataset_dir: str,
    num_classes: int,
    label_fraction: float = 100.0,
    seed: int = 0,
    train_list: str | None = None,
    val_list: str | None = None,
    test_list: str | None = None,
    group_pattern: str | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split_seed: int = 0,
    image_folder: str = "images",
    mask_folder: str = "masks",
    check: bool = True,
) -> dict[str, list[dict]]:
    """Build ``{"labeled", "unlabeled", "validation", "test"}`` lists of ``{"image", ["label"], "group"}``.

    List file paths are relative to ``dataset_dir`` unless absolute. With ``check`` every image is read
    and every mask is checked against its image (size) and ``num_classes`` (values), see ``check_items``.
    """
    if not 0 < label_fraction <= 100:
        raise DatasetError(f"label_fraction must be in (0, 100], got {label_fraction}.")
    if not os.path.isdir(dataset_dir):
        raise DatasetError(f"dataset folder not found: {dataset_dir}")
    images = _list_images(os.path.join(dataset_dir, image_folder))
    if not images:
        raise DatasetError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {os.path.join(dataset_dir, image_folder)}")
    mask_dir = os.path.join(dataset_dir, mask_folder)
    masks = _list_images(mask_dir) if os.path.isdir(mask_dir) else {}
    orphans = sorted(set(masks) - set(images))
    if orphans:
        raise DatasetError(f"mask without an image: {masks[orphans[0]]} ({len(orphans)} in all)")

    list_paths = {}
    for name, path, default in (
        ("train", train_list, "train.list"), ("validation", val_list, "val.list"), ("test", test_list, "test.list")
    ):
        if path is None and os.path.isfile(os.path.join(dataset_dir, default)):
            path = default
        if path is not None:
            list_paths[name] = path if os.path.isabs(path) else os.path.join(dataset_dir, path)
    lists = {name: _read_list(path) for name, path in list_paths.items()}
    all_ids = [case for ids in lists.values() for case in ids]
    cases: dict[str, list[str]] = defaultdict(list)
    for stem in images:
        case = _case_of(stem, all_ids) or (None if "train" in lists else stem)
        if case is not None:
            cases[case].append(stem)
    for name, path in list_paths.items():
        for case in lists[name]:
            if case not in cases:
                raise DatasetError(f"{path}: no image in {os.path.join(dataset_dir, image_folder)} matches id '{case}'")

    pattern = re.compile(group_pattern) if group_pattern else None

    def group_of(case: str) -> str:
        if pattern is None:
            return case
        match = pattern.search(case)
        if match is None:
            raise DatasetError(f"group_pattern '{group_pattern}' does not match case id '{case}'")
        return match.group(1) if match.groups() else match.group(0)

    groups: dict[str, list[str]] = defaultdict(list)
    for case, stems in cases.items():
        groups[group_of(case)].extend(stems)
    annotated = {g for g, stems in groups.items() if all(s in masks for s in stems)}

    def groups_in(name: str) -> set[str]:
        return {group_of(case) for case in lists.get(name, [])}

    split: dict[str, set[str]] = {name: groups_in(name) for name in ("train", "validation", "test")}
    if "train" not in lists:
        split["train"] = set(groups) - split["validation"] - split["test"]
    for name, fraction in (("test", test_fraction), ("validation", val_fraction)):
        if name in lists:
            continue
        candidates = sorted(split["train"] & annotated)
        count = min(len(candidates) - 1, max(1, round(len(split["train"]) * fraction))) if fraction > 0 else 0
        if count < 1:
            raise DatasetError(
                f"cannot carve a {name} split from {len(candidates)} annotated training group(s) of {dataset_dir}: "
                f"give a {name} list file or more annotated images."
            )
        split[name] = set(_draw(candidates, count, split_seed))
        split["train"] -= split[name]
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        shared = split[a] & split[b]
        if shared:
            raise DatasetError(f"groups in both the {a} and {b} splits: {sorted(shared)[:5]}")
    for name in ("validation", "test"):
        missing = sorted(split[name] - annotated)
        if missing:
            stem = next(s for s in groups[missing[0]] if s not in masks)
            raise DatasetError(f"{name} image without a mask: {images[stem]} (expected in {mask_dir})")

    train_groups = sorted(split["train"])
    if not train_groups:
        raise DatasetError(f"the training split of {dataset_dir} is empty.")
    num_labeled = max(1, math.ceil(len(train_groups) * label_fraction / 100))
    candidates = sorted(split["train"] & annotated)
    if not candidates:
        raise DatasetError(
            f"no labeled training images: none of the {len(train_groups)} training groups of {dataset_dir} "
            f"has masks in {mask_dir}."
        )
    labeled_groups = set(_draw(candidates, min(num_labeled, len(candidates)), seed))

    def items(group_ids, with_label: bool) -> list[dict]:
        out = []
        for g in sorted(group_ids):
            for stem in sorted(groups[g]):
                item = {"image": images[stem], "group": g}
                if with_label:
                    item["label"] = masks[stem]
                out.append(item)
        return out

    datalist = {
        "labeled": items(labeled_groups, True),
        "unlabeled": items(split["train"] - labeled_groups, False),
        "validation": items(split["validation"], True),
        "test": items(split["test"], True),
    }
    if check:
        check_items([item for part in datalist.values() for item in part], num_classes)
    return datalist


def check_items(items: Sequence[dict], num_classes: int) -> None:
    """Read every image (and mask): unreadable files, image/mask size mismatches and label values outside
    ``0..num_classes-1`` raise a ``DatasetError`` naming the file."""
    loader = LoadImage(image_only=True)

    def read(path: str) -> np.ndarray:
        try:
            return np.asarray(loader(path))
        except Exception as error:  # any reader failure: report which file
            raise DatasetError(f"cannot read {path}: {error}") from error

    for item in items:
        image = read(item["image"])
        if "label" not in item:
            continue
        mask = read(item["label"])
        if image.shape[: mask.ndim] != mask.shape and image.shape[-mask.ndim :] != mask.shape:
            raise DatasetError(
                f"mask {item['label']} has size {mask.shape}, its image {item['image']} has size {image.shape}."
            )
        values = np.unique(mask)
        bad = values[(values < 0) | (values >= num_classes) | (values != np.round(values))]
        if bad.size:
            shown = [int(v) if v == round(v) else float(v) for v in bad.tolist()]
            raise DatasetError(
                f"mask {item['label']} has label values {shown} outside 0..{num_classes - 1} "
                f"(num_classes={num_classes})."
            )
