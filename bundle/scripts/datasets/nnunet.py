"""nnU-Net v2 raw datasets (Isensee et al., Nat. Methods 2021): ``dataset.json`` with ``channel_names``,
``labels`` (``{"background": 0, ...}``) and ``file_ending``; ``imagesTr/<case>_<XXXX><file_ending>`` (one
file per channel), ``labelsTr/<case><file_ending>``, ``imagesTs/`` and, where kept, ``labelsTs/``.

* a one-file image in a format MONAI reads (NIfTI, PNG, ...) is used in place, an RGB picture (``_0000.png``
  with three channels, nnU-Net's one exception) too; the channels of a 3D case are stacked into one NIfTI
  (channels last, as the Decathlon ships them), and NRRD/MHA files are converted to NIfTI, into
  ``<output_dir>/images`` and ``labels``;
* training images without a label are unlabeled; test images with a label (``labelsTs``) form the test
  split, those without join training as unlabeled images (``test_images_unlabeled: false`` leaves them out);
* every case is its own group unless ``group_pattern`` groups case ids (as in the folder layout);
* region-based labels and the ``ignore`` label are refused: the bundle trains one class per label value.
"""

from __future__ import annotations

import os
import re

import SimpleITK as sitk

from ..atomic import atomic_write
from ..flags import as_bool
from .decathlon import label_values, read_manifest
from .files import PICTURE_EXTENSIONS, is_current, needs_conversion, read_simpleitk, to_nifti
from .folder import grouping
from .splits import Case, DatasetError


def _channel_files(folder: str, ending: str, num_channels: int, path: str) -> dict[str, list[str]]:
    """``{case: [channel files in order]}`` of an images folder; a missing channel is an error."""
    pattern = re.compile(rf"^(.+)_(\d{{4}}){re.escape(ending)}$")
    channels: dict[str, dict[int, str]] = {}
    for name in sorted(os.listdir(folder)):
        if name.startswith(".") or not name.endswith(ending):
            continue
        match = pattern.match(name)
        if match is None:
            raise DatasetError(f"{os.path.join(folder, name)} is not named <case>_<4-digit channel>{ending}")
        channels.setdefault(match.group(1), {})[int(match.group(2))] = os.path.join(folder, name)
    rgb = ending.lower() in PICTURE_EXTENSIONS  # nnU-Net's one exception: an RGB picture holds its channels
    for case, files in channels.items():
        if sorted(files) != list(range(num_channels)) and not (rgb and sorted(files) == [0]):
            raise DatasetError(
                f"case {case} in {folder} has channels {sorted(files)}; {path} declares {num_channels} "
                f"(files {case}_0000{ending} .. {case}_{num_channels - 1:04d}{ending})."
            )
    return {case: [files[c] for c in sorted(files)] for case, files in channels.items()}


def _stacked(files: list[str], target: str) -> str:
    """One NIfTI holding the channel files of a 3D case (x, y, z, channel), unless current."""
    if all(is_current(target, f) for f in files):
        return target

    def write(tmp: str) -> None:
        channels = [sitk.Cast(read_simpleitk(f), sitk.sitkFloat32) for f in files]
        if channels[0].GetDimension() != 3:
            raise DatasetError(f"{files[0]} is {channels[0].GetDimension()}D: only 3D cases may have several channel files.")
        for f, channel in zip(files[1:], channels[1:]):
            if channel.GetSize() != channels[0].GetSize():
                raise DatasetError(f"{f} has size {channel.GetSize()}, its channel 0 {files[0]} has {channels[0].GetSize()}.")
        try:
            stacked = sitk.JoinSeries(channels)
        except RuntimeError as error:
            raise DatasetError(f"the channels of {files[0]} do not share one grid: {str(error).strip().splitlines()[-1]}") from error
        sitk.WriteImage(stacked, tmp, useCompression=True)

    atomic_write(target, write)
    return target


def _readable_image(files: list[str], output_dir: str, case: str) -> tuple[str, str | None]:
    """The image path the bundle reads, and the publisher's file it was made from (None: used in place)."""
    target = os.path.join(output_dir, "images", f"{case}.nii.gz")
    if len(files) > 1:
        return _stacked(files, target), files[0]
    if needs_conversion(files[0]):
        return to_nifti(files[0], target), files[0]
    return files[0], None


def find_cases(
    root: str, output_dir: str, test_images_unlabeled: bool = True, group_pattern: str | None = None
) -> tuple[list[Case], dict[str, list[str]]]:
    path, manifest = read_manifest(root)
    folder, test_images_unlabeled = os.path.dirname(path), as_bool(test_images_unlabeled)
    label_values(path, manifest["labels"])
    missing = [key for key in ("channel_names", "file_ending") if key not in manifest]
    if missing:
        raise DatasetError(f"{path} has no {missing}: is it an nnU-Net v2 dataset.json? (Decathlon: --dataset_layout decathlon)")
    ending, num_channels = manifest["file_ending"], len(manifest["channel_names"])
    group_of = grouping(group_pattern)
    cases, test_groups = [], []
    for images, labels in (("imagesTr", "labelsTr"), ("imagesTs", "labelsTs")):
        image_dir, label_dir = os.path.join(folder, images), os.path.join(folder, labels)
        if not os.path.isdir(image_dir):
            if images == "imagesTr":
                raise DatasetError(f"no imagesTr folder beside {path}")
            continue
        for case, files in _channel_files(image_dir, ending, num_channels, path).items():
            label = os.path.join(label_dir, case + ending)
            label = label if os.path.isfile(label) else None
            if images == "imagesTs" and label is None and not test_images_unlabeled:
                continue
            image, image_source = _readable_image(files, output_dir, case)
            label_source = label if label and needs_conversion(label) else None
            if label_source:
                label = to_nifti(label, os.path.join(output_dir, "labels", f"{case}.nii.gz"))
            cases.append(Case(
                image=image, label=label, group=group_of(case), image_source=image_source, label_source=label_source,
            ))
            if images == "imagesTs" and label is not None:
                test_groups.append(group_of(case))
        if images == "imagesTr" and not cases:
            raise DatasetError(f"no images named <case>_0000{ending} in {image_dir}")
    return cases, ({"test": list(dict.fromkeys(test_groups))} if test_groups else {})
