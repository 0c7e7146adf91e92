"""ACDC as SSL4MIS ships it (Luo et al.; Bernard et al., IEEE TMI 2018): ``data/slices/<volume>_slice_<z>.h5``
training slices and ``data/<volume>.h5`` volumes (datasets ``image``, float, and ``label``, 0..3; volume
axes z, y, x), with ``train_slices.list`` (slice names), ``val.list`` and ``test.list`` (volume ids such as
``patient001_frame01``) beside ``data/``.

Every slice becomes a 2D NIfTI pair in ``<output_dir>/images`` and ``masks``, named
``<volume>_slice_<z>`` with axes (x, y) as MONAI reads pictures: the training slices as published (the
volumes of ``train.list`` cut into slices where there is no ``train_slices.list``), the validation and test
volumes cut into their slices, so that the ACDC overlay scores them per slice and per volume. The splits
are the lists', grouped per patient.
"""

from __future__ import annotations

import os
import re

import h5py
import nibabel as nib
import numpy as np

from ..atomic import atomic_write
from .files import find_folder, is_current, read_h5_pair
from .folder import read_list
from .splits import Case, DatasetError

LISTS = {"validation": "val.list", "test": "test.list"}
SLICE_NAME = re.compile(r"^(.+)_slice_(\d+)$")
PATIENT = re.compile(r"^(patient\d+)")


def _group(name: str, path: str) -> str:
    match = PATIENT.match(name)
    if match is None:
        raise DatasetError(f"{path}: '{name}' does not start with a patient id (patientNNN)")
    return match.group(1)


def _write_slices(source: str, names: list[str], output_dir: str, cut: bool) -> list[Case]:
    """The cases of one h5 file (a slice, or a volume ``cut`` into slices), written as NIfTI unless current."""
    targets = [(os.path.join(output_dir, "images", f"{n}.nii.gz"), os.path.join(output_dir, "masks", f"{n}.nii.gz"))
               for n in names]
    if not all(is_current(t, source) for pair in targets for t in pair):
        image, label = read_h5_pair(source)
        if image.ndim != (3 if cut else 2):
            raise DatasetError(f"{source} has {image.ndim} axes; expected {'a volume (z, y, x)' if cut else 'a slice (y, x)'}")
        for z, (image_path, mask_path) in enumerate(targets):
            for array, target in ((image, image_path), (label.astype(np.uint8), mask_path)):
                voxels = (array[z] if cut else array).T  # (y, x) -> (x, y)
                atomic_write(target, lambda tmp, v=voxels: nib.save(nib.Nifti1Image(v, np.eye(4)), tmp))
    return [
        Case(image=image_path, label=mask_path, group=_group(n, source), volume=SLICE_NAME.match(n).group(1),
             image_source=source, label_source=source)
        for n, (image_path, mask_path) in zip(names, targets)
    ]


def _volume_slices(source: str, volume: str) -> list[str]:
    """The slice names of a volume file: one per index of its first axis (z)."""
    try:
        with h5py.File(source, "r") as f:
            if "image" not in f:
                raise DatasetError(f"{source} has no dataset ['image'] (expected 'image' and 'label')")
            depth = f["image"].shape[0]
    except OSError as error:
        raise DatasetError(f"cannot read {source}: {error}") from error
    return [f"{volume}_slice_{z}" for z in range(depth)]


def find_cases(root: str, output_dir: str) -> tuple[list[Case], dict[str, list[str]]]:
    base = find_folder(root, lambda f: os.path.isdir(os.path.join(f, "data")) and os.path.isfile(
        os.path.join(f, "val.list")), "SSL4MIS ACDC folder (data/ and val.list)")
    data = os.path.join(base, "data")
    cases: list[Case] = []
    splits: dict[str, list[str]] = {}
    slices_list = os.path.join(base, "train_slices.list")
    if os.path.isfile(slices_list):
        for name in read_list(slices_list):
            if SLICE_NAME.match(name) is None:
                raise DatasetError(f"{slices_list}: '{name}' is not a slice name (<volume>_slice_<z>)")
            cases += _write_slices(os.path.join(data, "slices", f"{name}.h5"), [name], output_dir, cut=False)
        splits["train"] = list(dict.fromkeys(c.group for c in cases))
    lists = {**({} if cases else {"train": "train.list"}), **LISTS}
    for split, filename in lists.items():
        path = os.path.join(base, filename)
        if not os.path.isfile(path):
            if split == "train":
                raise DatasetError(f"neither train_slices.list nor train.list in {base}")
            continue
        volumes = read_list(path)
        for volume in volumes:
            source = os.path.join(data, f"{volume}.h5")
            if not os.path.isfile(source):
                raise DatasetError(f"{path} names {volume}, but {source} does not exist")
            cases += _write_slices(source, _volume_slices(source, volume), output_dir, cut=True)
        splits[split] = list(dict.fromkeys(_group(v, path) for v in volumes))
    return cases, splits
