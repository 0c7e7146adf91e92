"""What inference writes: masks in lossless formats only, each whole or not at all, and never its own masks read
back as input images."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from monai.data import ImageWriter, resolve_writer

from .atomic import atomic_write
from .datasets.folder import list_images, split_extension

logger = logging.getLogger(__name__)

LOSSLESS_MASK_EXTENSIONS = (".png", ".nii.gz", ".nii", ".nrrd", ".mha", ".tif", ".tiff", ".bmp")


def check_mask_extension(output_ext: str) -> str:
    """``output_ext`` if masks keep their exact values in it; lossy formats (JPEG) change class values."""
    if output_ext.lower() not in LOSSLESS_MASK_EXTENSIONS:
        raise ValueError(
            f"--output_ext {output_ext}: masks must be saved losslessly (a lossy format such as JPEG changes "
            f"class values and loses classes); use one of {', '.join(LOSSLESS_MASK_EXTENSIONS)}."
        )
    return output_ext


def atomic_writer(output_ext: str) -> type[ImageWriter]:
    """The writer MONAI picks for ``output_ext``, writing through a temporary file that replaces the target only
    once complete: a failed write (a full disk) leaves no truncated or empty mask behind."""
    base = resolve_writer(output_ext.lstrip("."))[0]

    class AtomicWriter(base):
        def write(self, filename, verbose=True, **kwargs):
            atomic_write(filename, lambda tmp: base.write(self, tmp, verbose=False, **kwargs))

    return AtomicWriter


def images_to_segment(path: str, output_dir: str, postfixes: Sequence[str]) -> list[str]:
    """The images of ``path`` (a file or a folder); in a folder that is also ``output_dir``, less the masks an
    earlier run wrote there: ``<stem>_<postfix>.<ext>`` beside an input ``<stem>.<ext>``."""
    images = list_images(path)
    if not os.path.isdir(path) or not os.path.isdir(output_dir) or not os.path.samefile(path, output_dir):
        return images
    stems = {_stem(image) for image in images}
    written = [image for image in images
               if any(_stem(image).endswith(f"_{p}") and _stem(image)[: -len(p) - 1] in stems for p in postfixes)]
    if written:
        logger.warning(f"{len(written)} file(s) in {path} are masks of its other images (an earlier run's output, "
                       f"e.g. {os.path.basename(written[0])}): not segmented again.")
    return [image for image in images if image not in written]


def _stem(path: str) -> str:
    return split_extension(os.path.basename(path))[0]
