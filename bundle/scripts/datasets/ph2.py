"""PH2 dermoscopy (Mendonça et al., EMBC 2013): 200 images with lesion masks.

Layout: ``PH2 Dataset images/IMDnnn/IMDnnn_Dermoscopic_Image/IMDnnn.bmp`` and
``IMDnnn_lesion/IMDnnn_lesion.bmp`` (0 / 255), below ``root`` (e.g. ``PH2Dataset/``) or in ``root`` itself.
Lesion masks are written as 0/1 PNG into ``<output_dir>/masks``. The publisher defines no split: 20 % of
the images are drawn as test and 10 % as validation with ``split_seed`` (140 / 20 / 40 for the full set).
"""

from __future__ import annotations

import os
import re

from .files import binary_mask, convert, find_folder, read_picture, save_png
from .splits import Case, DatasetError

NUM_CLASSES = 2
CASE = re.compile(r"^IMD\d+$")


def find_cases(root: str, output_dir: str) -> tuple[list[Case], dict[str, list[str]]]:
    folder = find_folder(root, lambda f: any(CASE.match(name) for name in os.listdir(f)), "PH2 case folders (IMDnnn)")
    cases = []
    for case in sorted(d for d in os.listdir(folder) if CASE.match(d)):
        image = os.path.join(folder, case, f"{case}_Dermoscopic_Image", f"{case}.bmp")
        lesion = os.path.join(folder, case, f"{case}_lesion", f"{case}_lesion.bmp")
        if not os.path.isfile(image):
            raise DatasetError(f"PH2 case {os.path.join(folder, case)} has no image {image}")
        if not os.path.isfile(lesion):
            raise DatasetError(f"PH2 image {image} has no lesion mask {lesion}")
        mask = convert(
            lesion, os.path.join(output_dir, "masks", f"{case}.png"),
            lambda tmp, p=lesion: save_png(binary_mask(read_picture(p), p, foreground=(1, 255)), tmp),
        )
        cases.append(Case(image=image, label=mask, group=case))
    return cases, {}
