"""A small deterministic synthetic 2D dataset: textured shapes in noise, written in the folder layout."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import numpy as np
from PIL import Image

NUM_CLASSES = 3  # background, striped disks, dotted squares


def _draw_image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    image = rng.normal(0.45, 0.12, (size, size)).astype(np.float32)
    label = np.zeros((size, size), dtype=np.uint8)
    for _ in range(rng.integers(1, 4)):
        cls = int(rng.integers(1, NUM_CLASSES))
        cy, cx = rng.uniform(0.2 * size, 0.8 * size, 2)
        radius = rng.uniform(0.1 * size, 0.2 * size)
        if cls == 1:
            region = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
            texture = 0.75 + 0.15 * np.sin((xx + yy) * rng.uniform(0.8, 1.2))
        else:
            region = (np.abs(yy - cy) <= radius) & (np.abs(xx - cx) <= radius)
            texture = 0.2 + 0.15 * ((np.floor(xx / 3) + np.floor(yy / 3)) % 2)
        image[region] = texture[region] + rng.normal(0, 0.08, int(region.sum()))
        label[region] = cls
    image = np.clip(image, 0, 1)
    return (image * 255).round().astype(np.uint8), label


def make_synthetic_dataset(
    output_dir: str, num_train: int = 120, num_val: int = 24, num_test: int = 24, size: int = 64, seed: int = 0
) -> str:
    """Write ``images/``, ``masks/`` (PNG) and ``train/val/test.list`` under ``output_dir`` and return it.

    The result depends only on the arguments; an existing dataset made with the same arguments is reused.
    """
    spec = {"num_train": num_train, "num_val": num_val, "num_test": num_test, "size": size, "seed": seed}
    spec_path = os.path.join(output_dir, "spec.json")
    if os.path.isfile(spec_path):
        with open(spec_path) as f:
            if json.load(f) == spec:
                return output_dir
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=".synthetic-")
    os.makedirs(os.path.join(staging, "images"))
    os.makedirs(os.path.join(staging, "masks"))
    rng = np.random.default_rng(seed)
    splits = {"train": num_train, "val": num_val, "test": num_test}
    index = 0
    for split, count in splits.items():
        ids = []
        for _ in range(count):
            case = f"case{index:04d}"
            image, label = _draw_image(rng, size)
            Image.fromarray(image).save(os.path.join(staging, "images", f"{case}.png"))
            Image.fromarray(label).save(os.path.join(staging, "masks", f"{case}.png"))
            ids.append(case)
            index += 1
        with open(os.path.join(staging, f"{split}.list"), "w") as f:
            f.write("\n".join(ids) + "\n")
    with open(os.path.join(staging, "spec.json"), "w") as f:
        json.dump(spec, f)
    if os.path.exists(output_dir):
        shutil.rmtree(output_dir)
    os.replace(staging, output_dir)
    return output_dir
