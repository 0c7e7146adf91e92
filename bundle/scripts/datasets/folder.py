"""The generic 2D/3D folder dataset: ``images/`` and ``masks/`` with matching names.

* an image's mask is the file in ``masks/`` with the same name stem (any supported extension); images
  without a mask are unlabeled;
* NIfTI and pictures are used in place; NRRD, MHA/MHD and DICOM series (a folder in ``images/`` per series)
  are converted to NIfTI with their geometry, into ``<output_dir>/images`` and ``masks``;
* list files (``train.list``, ``val.list``, ``test.list`` in the dataset folder when not given) hold case
  ids, one a line; an image belongs to the listed id that prefixes its stem (followed by a non-alphanumeric
  character or the end), else it is a case of its own. With a training list, images of no listed id are
  ignored; without one, they form the training split;
* ``group_pattern`` (a regular expression; its first group, or the whole match) maps a case id to a group
  (e.g. a patient), so that a group never straddles two splits or the labeled/unlabeled boundary;
* ``mask_suffix`` names masks ``<image stem><suffix>`` (``"_mask"``: ``case1.png`` and ``case1_mask.png``);
* ``mask_values`` lists the value that stores each class, background first, for masks that are not label
  maps 0..K-1 (``[0, 255]``: binary masks saved as 0/255); the masks are then mapped into
  ``<output_dir>/masks-<values>``, a folder of its own for each mapping.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Sequence

from .files import SIMPLEITK_EXTENSIONS, class_values, converted_stem, is_picture, map_mask, needs_conversion, to_nifti
from .splits import Case, DatasetError

IMAGE_EXTENSIONS = (".nii.gz", ".nii", ".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg")
LIST_FILES = {"train": "train.list", "validation": "val.list", "test": "test.list"}


def split_extension(filename: str) -> tuple[str, str]:
    """``('case_01', '.nii.gz')`` for ``case_01.nii.gz``; ``(filename, '')`` for unsupported files."""
    lower = filename.lower()
    for ext in IMAGE_EXTENSIONS:
        if lower.endswith(ext):
            return filename[: -len(ext)], ext
    return filename, ""


def images_by_stem(folder: str, convertible: bool = False) -> dict[str, str]:
    """``{stem: path}`` of the supported image files in ``folder``; with ``convertible``, also of the files
    and DICOM series folders that ``files.to_nifti`` converts."""
    if not os.path.isdir(folder):
        raise DatasetError(f"folder not found: {folder}")
    files: dict[str, str] = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = split_extension(name)
        if convertible and needs_conversion(os.path.join(folder, name)):
            stem, ext = converted_stem(name), "converted"
        if not ext or name.startswith("."):
            continue
        if stem in files:
            raise DatasetError(f"two files with the stem '{stem}' in {folder}: {os.path.basename(files[stem])}, {name}")
        files[stem] = os.path.join(folder, name)
    return files


def _subfolder_hint(image_dir: str) -> str:
    """A hint when ``image_dir`` has subfolders of pictures: only DICOM series may be folders."""
    nested = sorted(name for name in os.listdir(image_dir) if os.path.isdir(os.path.join(image_dir, name))
                    and any(split_extension(f)[1] for f in os.listdir(os.path.join(image_dir, name))))
    if not nested:
        return ""
    return (f"; {os.path.join(image_dir, nested[0])} holds pictures or images in a subfolder, which is read as one "
            "DICOM series: put images directly in the images folder")


def list_images(path: str) -> list[str]:
    """The supported image files of a folder (sorted), or ``[path]`` for a single file."""
    if os.path.isfile(path):
        return [path]
    images = list(images_by_stem(path).values())
    if not images:
        raise DatasetError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {path}; NRRD, MHA/MHD and DICOM series are read by "
            "the folder dataset layout, which converts them to NIfTI in its prepared_data folder."
        )
    return images


def read_list(path: str) -> list[str]:
    """The ids of a list file, one a line, in file order."""
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


def _without_suffix(masks: dict[str, str], suffix: str) -> dict[str, str]:
    """``{image stem: path}`` of masks named ``<image stem><suffix>``; a mask without the suffix is an error."""
    unsuffixed = [path for stem, path in masks.items() if not stem.endswith(suffix)]
    if unsuffixed:
        raise DatasetError(f"mask {unsuffixed[0]} does not end in mask_suffix '{suffix}' ({len(unsuffixed)} in all)")
    return {stem[: -len(suffix)]: path for stem, path in masks.items()}


def _suffix_hint(orphans: Sequence[str], images: dict[str, str]) -> str:
    """Where the first orphan masks' stems are images' stems plus one common suffix, the option that says so."""
    suffixes = set()
    for orphan in orphans[:20]:
        owners = [stem for stem in images if orphan.startswith(stem) and len(orphan) > len(stem)]
        if not owners:
            return ""
        suffixes.add(orphan[len(max(owners, key=len)) :])
    if len(suffixes) != 1:
        return ""
    suffix = suffixes.pop()
    return f"; for masks named <image>{suffix}: --dataset_options \"{{'mask_suffix': '{suffix}'}}\""


def grouping(group_pattern: str | None) -> Callable[[str], str]:
    """Case id -> group: the first group of ``group_pattern`` (or its whole match), the id itself without one."""
    try:
        pattern = re.compile(group_pattern) if group_pattern else None
    except re.error as error:
        raise DatasetError(f"group_pattern '{group_pattern}' is not a valid regular expression ({error}); e.g. "
                           "'^(patient\\d+)' groups case ids by patient.") from None

    def group_of(case: str) -> str:
        if pattern is None:
            return case
        match = pattern.search(case)
        if match is None:
            raise DatasetError(f"group_pattern '{group_pattern}' does not match case id '{case}'")
        return match.group(1) if match.groups() else match.group(0)

    return group_of


def find_cases(
    root: str,
    output_dir: str | None = None,
    train_list: str | None = None,
    val_list: str | None = None,
    test_list: str | None = None,
    group_pattern: str | None = None,
    image_folder: str = "images",
    mask_folder: str = "masks",
    mask_values: Sequence[int] | None = None,
    mask_suffix: str | None = None,
) -> tuple[list[Case], dict[str, list[str]]]:
    """The cases of a folder dataset and the groups its list files assign to each split.

    List file paths are relative to ``root`` unless absolute. Files MONAI reads are used in place; the
    others are converted into ``output_dir``.
    """
    if not os.path.isdir(root):
        raise DatasetError(f"dataset folder not found: {root}")
    mask_values = class_values(mask_values) if mask_values is not None else None
    image_dir, mask_dir = os.path.join(root, image_folder), os.path.join(root, mask_folder)
    if not os.path.isdir(image_dir):
        raise DatasetError(f"no '{image_folder}' folder in {root} (expected {image_folder}/ and {mask_folder}/)")
    images = images_by_stem(image_dir, convertible=True)
    if not images:
        raise DatasetError(f"no images ({', '.join(IMAGE_EXTENSIONS + SIMPLEITK_EXTENSIONS)}, DICOM) in {image_dir}")
    masks = images_by_stem(mask_dir, convertible=True) if os.path.isdir(mask_dir) else {}
    if mask_suffix:
        masks = _without_suffix(masks, mask_suffix)
    orphans = sorted(set(masks) - set(images))
    if orphans:
        raise DatasetError(
            f"mask without an image: {masks[orphans[0]]} ({len(orphans)} in all)" + _suffix_hint(orphans, images)
            + _subfolder_hint(image_dir)
        )

    given = {"train": train_list, "validation": val_list, "test": test_list}
    list_paths = {}
    for name, path in given.items():
        if path is None and os.path.isfile(os.path.join(root, LIST_FILES[name])):
            path = LIST_FILES[name]
        if path is not None:
            list_paths[name] = path if os.path.isabs(path) else os.path.join(root, path)
    lists = {name: read_list(path) for name, path in list_paths.items()}
    all_ids = [case for ids in lists.values() for case in ids]
    stems_of: dict[str, list[str]] = defaultdict(list)
    for stem in images:
        case = _case_of(stem, all_ids) or (None if "train" in lists else stem)
        if case is not None:
            stems_of[case].append(stem)
    for name, path in list_paths.items():
        for case in lists[name]:
            if case not in stems_of:
                raise DatasetError(f"{path}: no image in {image_dir} matches id '{case}'")

    group_of = grouping(group_pattern)

    def written(source: str, folder: str, name: str) -> str:
        if output_dir is None:
            raise DatasetError(f"{source} must be converted, but no output folder was given.")
        return os.path.join(output_dir, folder, name)

    def readable_mask(mask: str, stem: str) -> str:
        if mask_values is not None:
            folder = "masks-" + "-".join(str(v) for v in mask_values)
            name = stem + (".png" if is_picture(mask) else ".nii.gz")
            return map_mask(mask, written(mask, folder, name), mask_values)
        return to_nifti(mask, written(mask, "masks", f"{stem}.nii.gz")) if needs_conversion(mask) else mask

    cases = []
    for case, stems in stems_of.items():
        for stem in stems:
            image, label = images[stem], masks.get(stem)
            readable_image = image
            if needs_conversion(image):
                readable_image = to_nifti(image, written(image, "images", f"{stem}.nii.gz"))
            readable_label = readable_mask(label, stem) if label is not None else None
            cases.append(Case(
                image=readable_image, label=readable_label, group=group_of(case), volume=case,
                image_source=image if readable_image != image else None,
                label_source=label if readable_label != label else None,
            ))
    splits = {name: list(dict.fromkeys(group_of(case) for case in ids)) for name, ids in lists.items()}
    return cases, splits
