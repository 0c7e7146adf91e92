"""Left atrium LGE-MRI (2018 Atrial Segmentation Challenge, Xiong et al., MedIA 2021) from three sources.

* ``la``: the common preprocessed release (Yu et al., UA-MT): ``2018LA_Seg_Training Set/<ID>/mri_norm2.h5``
  (datasets ``image``, float, and ``label``, 0/1; axes x, y, z) with ``train.list`` / ``test.list`` beside
  the folder. Volumes are written as NIfTI into ``<output_dir>/images`` and ``labels`` with 0.625 mm
  isotropic voxels, the challenge's resolution (the h5 files store no geometry).
* ``la_challenge``: the original challenge release: ``<ID>/lgemri.nrrd`` and ``<ID>/laendo.nrrd`` (0 / 255)
  in folders up to two levels below ``root`` (e.g. ``Training Set/``), read with SimpleITK and written as
  NIfTI with their geometry; ``train.list`` / ``test.list`` in ``root`` are used when present.
* ``heart``: Medical Segmentation Decathlon Task02_Heart (``dataset.json``, ``imagesTr``, ``labelsTr``), read
  by ``decathlon.find_cases`` with its unlabeled ``imagesTs`` left out.

Every volume is its own group. Without a test list, 20 % of the volumes are drawn as test; validation is
always carved from the training volumes (10 %). ``labeled_selection: first`` takes the first N ids of
``train.list`` as the labeled ones, the convention of the LA literature ("N labeled").
"""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np

from ..atomic import atomic_write
from .files import binary_mask, find_folder, is_current, read_h5_pair, to_nifti
from .folder import LIST_FILES, read_list
from .splits import Case, DatasetError

NUM_CLASSES = 2
PREPROCESSED_FOLDER = "2018LA_Seg_Training Set"
SPACING_MM = 0.625


def _lists(root: str) -> dict[str, list[str]]:
    return {
        name: read_list(os.path.join(root, filename))
        for name, filename in LIST_FILES.items()
        if os.path.isfile(os.path.join(root, filename))
    }


def _select(case_ids: list[str], lists: dict[str, list[str]], where: str) -> list[str]:
    """The cases to use: all of them, or only the listed ones when a training list exists."""
    listed = [case for ids in lists.values() for case in ids]
    missing = sorted(set(listed) - set(case_ids))
    if missing:
        raise DatasetError(f"list files in the dataset folder name {missing[:5]}, which are not in {where}")
    return [case for case in case_ids if case in listed] if "train" in lists else case_ids


def read_h5_volume(path: str) -> tuple[np.ndarray, np.ndarray]:
    image, label = read_h5_pair(path)
    return image, binary_mask(label, path, foreground=(1,))


def _save_nifti(array: np.ndarray, path: str) -> None:
    nib.save(nib.Nifti1Image(array, np.diag([SPACING_MM, SPACING_MM, SPACING_MM, 1.0])), path)


def find_cases_preprocessed(root: str, output_dir: str) -> tuple[list[Case], dict[str, list[str]]]:
    base = find_folder(
        root, lambda f: os.path.isdir(os.path.join(f, PREPROCESSED_FOLDER)), f"'{PREPROCESSED_FOLDER}' folder"
    )
    volumes = os.path.join(base, PREPROCESSED_FOLDER)
    lists = _lists(base)
    case_ids = sorted(d for d in os.listdir(volumes) if os.path.isdir(os.path.join(volumes, d)))
    cases = []
    for case in _select(case_ids, lists, volumes):
        source = os.path.join(volumes, case, "mri_norm2.h5")
        if not os.path.isfile(source):
            raise DatasetError(f"LA case folder {os.path.join(volumes, case)} has no mri_norm2.h5")
        image, label = (os.path.join(output_dir, kind, f"{case}.nii.gz") for kind in ("images", "labels"))
        if not (is_current(image, source) and is_current(label, source)):
            volume, mask = read_h5_volume(source)
            atomic_write(image, lambda tmp: _save_nifti(volume, tmp))
            atomic_write(label, lambda tmp: _save_nifti(mask, tmp))
        cases.append(Case(image=image, label=label, group=case))
    return cases, lists


def find_cases_challenge(root: str, output_dir: str) -> tuple[list[Case], dict[str, list[str]]]:
    if not os.path.isdir(root):
        raise DatasetError(f"dataset folder not found: {root}")
    folders = {}
    for parent, subfolders, files in os.walk(root):
        if "lgemri.nrrd" in files:
            case = os.path.basename(parent)
            if case in folders:
                raise DatasetError(f"two LA cases named {case}: {folders[case]} and {parent}")
            folders[case] = parent
            subfolders.clear()
        elif os.path.relpath(parent, root).count(os.sep) >= 2:
            subfolders.clear()
    if not folders:
        raise DatasetError(f"no LA challenge cases (<ID>/lgemri.nrrd) in {root} or its subfolders")
    lists = _lists(root)
    cases = []
    for case in _select(sorted(folders), lists, root):
        source_image, source_label = (os.path.join(folders[case], name) for name in ("lgemri.nrrd", "laendo.nrrd"))
        image = to_nifti(source_image, os.path.join(output_dir, "images", f"{case}.nii.gz"))
        label = None
        if os.path.isfile(source_label):
            label = to_nifti(
                source_label, os.path.join(output_dir, "labels", f"{case}.nii.gz"),
                voxels=lambda values, path=source_label: binary_mask(values, path, foreground=(1, 255)),
            )
        cases.append(Case(
            image=image, label=label, group=case, image_source=source_image, label_source=label and source_label,
        ))
    return cases, lists
