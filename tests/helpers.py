"""Helpers that several test files import: tiny networks, a spy on the image pathway, a folder dataset
on disk, and the end-to-end tests' hang timeout."""

import numpy as np
import torch
from PIL import Image

from scripts.networks import DualPathwayDiffusionUNet

# subprocess timeout of the end-to-end tests: long enough for a loaded 2-core machine, there to catch a hang
HANG_TIMEOUT = 3600
VOLUME_LA = ["datasets/volumes.yaml", "datasets/la.yaml"]  # the left atrium: 3D machinery, then the dataset


def groups(items):
    """The groups (patients, volumes) of datalist items."""
    return {item["group"] for item in items}


def tiny_network(spatial_dims=2, image_channels=1, num_classes=3, shared_body=True, seed=0):
    torch.manual_seed(seed)
    return DualPathwayDiffusionUNet(
        spatial_dims=spatial_dims, image_channels=image_channels, num_classes=num_classes, channels=(8, 16),
        attention_levels=(False, False), num_res_blocks=1, norm_num_groups=8, num_head_channels=16,
        shared_body=shared_body,
    )


def spy_on_image_pathway(network):
    """Records (detached) every mask the network's image pathway is given; returns the list."""
    masks = []
    original = network.image_pathway

    def spy(noisy_image, mask, timesteps):
        masks.append(mask.detach().clone())
        return original(noisy_image, mask, timesteps)

    network.image_pathway = spy
    return masks


def write_folder_dataset(root, num_images=12, size=16, num_classes=3, lists=None, seed=0, with_masks=True):
    """Images and masks as PNG under root/images and root/masks; lists maps 'train.list' etc. to ids."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(num_images):
        name = f"case{i:03d}"
        label = rng.integers(0, num_classes, (size, size)).astype(np.uint8)
        image = (label * 60 + rng.integers(0, 40, (size, size))).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"{name}.png")
        if with_masks:
            Image.fromarray(label).save(root / "masks" / f"{name}.png")
        names.append(name)
    for list_name, ids in (lists or {}).items():
        (root / list_name).write_text("\n".join(ids) + "\n")
    return names
