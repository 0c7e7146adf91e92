"""Reading and converting dataset files; every failure is a ``DatasetError`` naming the file."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence

import h5py
import nibabel as nib
import numpy as np
import SimpleITK as sitk
from monai.data import MetaTensor
from monai.transforms import LoadImage
from PIL import Image

from ..atomic import atomic_write
from .splits import DatasetError

_loader = LoadImage(image_only=True)


def find_folder(root: str, holds: Callable[[str], bool], what: str, max_depth: int = 2) -> str:
    """The shallowest folder at most ``max_depth`` levels below ``root`` (breadth first, sorted) for which
    ``holds(folder)`` is true: publishers' archives unpack with one or two wrapper folders."""
    if not os.path.isdir(root):
        raise DatasetError(f"dataset folder not found: {root}")
    level = [root]
    for _ in range(max_depth + 1):
        for folder in level:
            if holds(folder):
                return folder
        level = [
            os.path.join(folder, name) for folder in level for name in sorted(os.listdir(folder))
            if os.path.isdir(os.path.join(folder, name))
        ]
    raise DatasetError(f"no {what} in {root} or its subfolders")


def read_image(path: str) -> MetaTensor:
    """A file's voxels and geometry (``affine``) through MONAI's readers (channels last for colour images)."""
    if not os.path.isfile(path):
        raise DatasetError(f"file not found: {path}")
    try:
        return _loader(path)
    except Exception as error:  # any reader failure: report which file
        raise DatasetError(f"cannot read {path}: {error}") from error


def read_array(path: str) -> np.ndarray:
    """A file's voxels through MONAI's readers (channels last for colour images)."""
    return np.asarray(read_image(path))


def geometry_difference(image_affine: np.ndarray, mask_affine: np.ndarray, tolerance: float = 1e-3) -> str | None:
    """How a mask's voxel grid differs from its image's (spacing, axis directions, origin), or None where they
    agree within ``tolerance`` (mm, and relative for directions), as nnU-Net's dataset check compares them."""
    image_affine, mask_affine = np.asarray(image_affine, float), np.asarray(mask_affine, float)
    spacing = [np.linalg.norm(a[:-1, :-1], axis=0) for a in (image_affine, mask_affine)]
    if not np.allclose(*spacing, atol=tolerance):
        return f"spacing {np.round(spacing[1], 4).tolist()} against the image's {np.round(spacing[0], 4).tolist()}"
    directions = [a[:-1, :-1] / s for a, s in zip((image_affine, mask_affine), spacing)]
    if not np.allclose(*directions, atol=tolerance):
        return (f"axis directions {np.round(directions[1], 3).tolist()} against the image's "
                f"{np.round(directions[0], 3).tolist()} (an axis flipped or swapped)")
    if not np.allclose(image_affine[:-1, -1], mask_affine[:-1, -1], atol=tolerance * max(1.0, spacing[0].max())):
        return f"origin {np.round(mask_affine[:-1, -1], 3).tolist()} against the image's {np.round(image_affine[:-1, -1], 3).tolist()}"
    return None


def read_h5_pair(path: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``image`` (float32) and ``label`` datasets of an h5 file, of the same size."""
    if not os.path.isfile(path):
        raise DatasetError(f"file not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            missing = [key for key in ("image", "label") if key not in f]
            if missing:
                raise DatasetError(f"{path} has no dataset {missing} (expected 'image' and 'label')")
            image, label = np.asarray(f["image"], dtype=np.float32), np.asarray(f["label"])
    except (OSError, KeyError) as error:
        raise DatasetError(f"cannot read {path}: {error}") from error
    if image.shape != label.shape:
        raise DatasetError(f"{path}: label has size {label.shape}, image has size {image.shape}")
    return image, label


def read_picture(path: str) -> np.ndarray:
    """A BMP/PNG/JPEG as stored: rows x columns (x channels), palette indices kept."""
    if not os.path.isfile(path):
        raise DatasetError(f"file not found: {path}")
    try:
        with Image.open(path) as picture:
            return np.asarray(picture)
    except Exception as error:
        raise DatasetError(f"cannot read {path}: {error}") from error


def binary_mask(values: np.ndarray, path: str, foreground: Collection[int]) -> np.ndarray:
    """0/1 mask from a binary annotation whose foreground value is one of ``foreground`` (e.g. 255);
    any other value than 0 and those is an error naming ``path``."""
    values = values.astype(np.int64) if values.dtype == bool else values
    present = set(np.unique(values).tolist())
    unexpected = sorted(present - {0, *foreground})
    if unexpected:
        raise DatasetError(
            f"mask {path} has values {unexpected[:10]}; expected 0 (background) and {sorted(foreground)} (foreground)."
        )
    return (values != 0).astype(np.uint8)


def class_values(mask_values: Sequence[int] | str) -> list[int]:
    """``mask_values`` checked: the distinct integers that store classes 0, 1, ... (2 to 256 of them); a
    string (``"0,255"`` or ``"[0, 255]"``, as command-line options give it) is read as such a list."""
    values = mask_values
    if isinstance(values, str):
        try:
            values = [int(v) for v in values.strip().strip("[]").split(",")]
        except ValueError:
            values = None
    if not isinstance(values, (list, tuple)) or not 2 <= len(values) <= 256 or len(set(values)) != len(values) or any(
        isinstance(v, bool) or not isinstance(v, int) for v in values
    ):
        raise DatasetError(
            f"mask_values must list the distinct integer value of each class, background first (e.g. [0, 255]), "
            f"got {mask_values!r}."
        )
    return list(values)


def saved_values(mask_values: Sequence[int] | str | None, num_classes: int) -> list[int]:
    """The value that a saved mask file holds for each of ``num_classes`` classes: ``mask_values`` checked
    (one per class, in 0..255 as PNG and uint8 hold them), or the class indices where it is None."""
    if mask_values is None:
        return list(range(num_classes))
    values = class_values(mask_values)
    if len(values) != num_classes or min(values) < 0 or max(values) > 255:
        raise DatasetError(
            f"mask_values {values} must give one value in 0..255 for each of the {num_classes} classes "
            "(num_classes), background first."
        )
    return values


def mapped_labels(values: np.ndarray, path: str, mask_values: Sequence[int]) -> np.ndarray:
    """The label map (uint8) of a mask that stores class k as ``mask_values[k]``; a picture whose colour
    channels are all equal (grey saved as RGB or RGBA) counts as grey. A value not listed, or a colour
    mask, is an error naming ``path``."""
    if values.ndim == 3 and values.shape[-1] in (3, 4) and is_picture(path):
        colour = values[..., :3]
        if np.any(colour != colour[..., :1]):
            raise DatasetError(
                f"mask {path} is a colour picture; save each mask as one grey channel holding mask_values."
            )
        values = colour[..., 0]
    unlisted = sorted(set(np.unique(values).tolist()) - set(mask_values))
    if unlisted:
        lossy = path.lower().endswith((".jpg", ".jpeg"))
        raise DatasetError(
            f"mask {path} has values {unlisted[:10]} that mask_values {list(mask_values)} does not list "
            "(class k is stored as mask_values[k])." + (" JPEG blurs mask values: save masks as PNG." if lossy else "")
        )
    labels = np.zeros(values.shape, np.uint8)
    for label, value in enumerate(mask_values):
        labels[values == value] = label
    return labels


def is_current(target: str, source: str) -> bool:
    """``target`` exists and is not older than ``source`` (a conversion can be skipped)."""
    return os.path.isfile(target) and os.path.getmtime(target) >= os.path.getmtime(source)


def convert(source: str, target: str, make: Callable[[str], None]) -> str:
    """Write ``target`` from ``source`` with ``make(tmp_path)`` unless it is current; returns ``target``."""
    if not is_current(target, source):
        atomic_write(target, make)
    return target


SIMPLEITK_EXTENSIONS = (".nrrd", ".nhdr", ".mha", ".mhd")  # read through SimpleITK and converted to NIfTI


def needs_conversion(path: str) -> bool:
    """True for files MONAI cannot read here (NRRD, MHA/MHD) and for folders (a DICOM series)."""
    return os.path.isdir(path) or path.lower().endswith(SIMPLEITK_EXTENSIONS)


def read_simpleitk(source: str) -> sitk.Image:
    """An image file, or the one DICOM series of a folder, through SimpleITK."""
    if not os.path.exists(source):
        raise DatasetError(f"file not found: {source}")
    try:
        if not os.path.isdir(source):
            return sitk.ReadImage(source)
        reader = sitk.ImageSeriesReader()
        series = reader.GetGDCMSeriesIDs(source)
        if not series:
            names = sorted(os.listdir(source))
            raise DatasetError(
                f"{source} is a folder, read as a DICOM series, but holds no DICOM files "
                f"({len(names)} file(s){': ' + ', '.join(names[:3]) if names else ''}{', ...' if len(names) > 3 else ''}): "
                "put pictures and single-file images directly in the images folder, one folder per DICOM series."
            )
        if len(series) != 1:
            raise DatasetError(
                f"{source} holds {len(series)} DICOM series; an image folder must hold exactly one "
                "(put each series in a folder of its own)."
            )
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(source, series[0]))
        return reader.Execute()
    except RuntimeError as error:  # SimpleITK's reader errors
        raise DatasetError(f"cannot read {source}: {str(error).strip().splitlines()[-1]}") from error


def to_nifti(source: str, target: str, voxels: Callable[[np.ndarray], np.ndarray] | None = None) -> str:
    """``target`` (NIfTI) from ``source`` (what ``read_simpleitk`` reads) with its geometry, unless current;
    ``voxels`` maps the voxel array (SimpleITK's axis order z, y, x), e.g. to a label map."""

    def write(tmp: str) -> None:
        image = read_simpleitk(source)
        if voxels is not None:
            mapped = sitk.GetImageFromArray(voxels(sitk.GetArrayFromImage(image)))
            mapped.CopyInformation(image)
            image = mapped
        sitk.WriteImage(image, tmp, useCompression=True)

    return convert(source, target, write)


def map_mask(source: str, target: str, mask_values: Sequence[int]) -> str:
    """``target`` from the mask ``source`` with ``mapped_labels``, unless current: a PNG for a picture (rows
    and columns as stored), a NIfTI for a NIfTI or a file ``to_nifti`` converts (geometry kept)."""
    if needs_conversion(source):
        return to_nifti(source, target, lambda voxels: mapped_labels(voxels, source, mask_values))

    def write(tmp: str) -> None:
        if is_picture(source):
            save_png(mapped_labels(read_picture(source), source, mask_values), tmp)
            return
        try:
            image = nib.load(source)
            voxels = np.asanyarray(image.dataobj)
        except Exception as error:  # any reader failure: report which file
            raise DatasetError(f"cannot read {source}: {error}") from error
        mapped = nib.Nifti1Image(mapped_labels(voxels, source, mask_values), image.affine, image.header)
        mapped.set_data_dtype(np.uint8)
        nib.save(mapped, tmp)

    return convert(source, target, write)


def converted_stem(path: str) -> str:
    """The name a converted file keeps: a folder's name, or the file name without its extension."""
    name = os.path.basename(os.path.normpath(path))
    lower = name.lower()
    return next((name[: -len(ext)] for ext in SIMPLEITK_EXTENSIONS if lower.endswith(ext)), name)


def save_png(mask: np.ndarray, path: str) -> None:
    """A uint8 label map as PNG (rows x columns)."""
    Image.fromarray(mask.astype(np.uint8)).save(path, format="PNG")


PICTURE_EXTENSIONS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


def is_picture(path: str) -> bool:
    return path.lower().endswith(PICTURE_EXTENSIONS)


def _shown(item: dict, key: str) -> str:
    """A file as errors name it: a converted file with the publisher's file it was made from."""
    source = item.get(f"{key}_source")
    return f"{item[key]} (converted from {source})" if source else item[key]


def check_items(items: Sequence[dict], num_classes: int) -> None:
    """Read every image (and mask): unreadable files, NaN or infinite image values, an image and its mask in
    formats that order the axes differently (a picture and a volume), image/mask size mismatches, a volume's
    mask on another grid (spacing, orientation, origin) and label values outside
    ``0..num_classes-1`` raise a ``DatasetError`` naming the file (and the file a converted one came from,
    ``image_source`` / ``label_source``)."""
    for item in items:
        image_file = read_image(item["image"])
        image = np.asarray(image_file)
        if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
            raise DatasetError(
                f"image {_shown(item, 'image')} has {int((~np.isfinite(image)).sum())} NaN or infinite values; "
                "a single one spreads through the network and turns every weight into NaN. Fix or remove the image."
            )
        if "label" not in item:
            continue
        image_name, mask_name = _shown(item, "image"), _shown(item, "label")
        if is_picture(item["image"]) != is_picture(item["label"]):
            raise DatasetError(
                f"mask {mask_name} and its image {image_name} are of different kinds (a picture and a "
                "volume), which store rows and columns in different orders: a square mask would be silently "
                "transposed. Save the mask in its image's format."
            )
        mask_file = read_image(item["label"])
        mask = np.asarray(mask_file)
        if mask.ndim == image.ndim + 1 and mask.shape[:-1] == image.shape[: image.ndim] and mask.shape[-1] in (3, 4):
            raise DatasetError(
                f"mask {mask_name} is a colour picture ({mask.shape[-1]} channels); a mask must be a label map with "
                "one value per class (0 background, 1.. the classes): save it as a single-channel image."
            )
        if image.shape[: mask.ndim] != mask.shape and image.shape[-mask.ndim :] != mask.shape:
            raise DatasetError(f"mask {mask_name} has size {mask.shape}, its image {image_name} has size {image.shape}.")
        difference = None if is_picture(item["image"]) else geometry_difference(image_file.affine, mask_file.affine)
        if difference:
            raise DatasetError(
                f"mask {mask_name} does not lie on its image's grid ({image_name}): {difference}. The labels would "
                "sit on other voxels than the anatomy they mark; resample the mask onto its image (or fix its header)."
            )
        values = np.unique(mask)
        bad = values[(values < 0) | (values >= num_classes) | (values != np.round(values))]
        if bad.size:
            shown = [int(v) if v == round(v) else float(v) for v in bad.tolist()]
            present = [int(v) for v in values.tolist()] if not np.any(values != np.round(values)) else None
            hint = (
                f" If the masks store each class as another value, list those values, background first: with "
                f"the folder layout, --dataset_options \"{{'mask_values': {present}}}\" (this mask's values)."
                if present and len(present) <= 16 else ""
            )
            raise DatasetError(
                f"mask {mask_name} has label values {shown} outside 0..{num_classes - 1} "
                f"(num_classes={num_classes}).{hint}"
            )


def check_datalist(datalist: dict[str, list[dict]], num_classes: int, source: str) -> None:
    """What training needs of a datalist, before anything is written: labeled images, a mask for every
    labeled, validation and test image, and at least one foreground pixel among the labeled masks."""
    if not datalist["labeled"]:
        raise DatasetError(f"{source}: the labeled list is empty; training needs at least one labeled image.")
    for part in ("labeled", "validation", "test"):
        missing = next((item for item in datalist[part] if "label" not in item), None)
        if missing is not None:
            raise DatasetError(f"{source}: {part} image {missing['image']} has no 'label' (its mask).")
    if not any(np.any(read_array(item["label"]) > 0) for item in datalist["labeled"]):
        raise DatasetError(
            f"{source}: every mask of the {len(datalist['labeled'])} labeled images is all background (label 0); "
            f"the model could learn nothing. Check the masks (values 1..{num_classes - 1} mark the classes)."
        )
