"""Tiny datasets written in their publishers' real layouts and file formats (synthetic pixels)."""

import json
import os

import numpy as np
from PIL import Image


def _blob(shape, rng, value=1):
    """A random filled ellipse (2D) or ellipsoid (3D) of ``value`` on 0."""
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    centre = [rng.uniform(0.3 * n, 0.7 * n) for n in shape]
    radius = [rng.uniform(0.15 * n, 0.3 * n) for n in shape]
    inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radius)) <= 1
    return (inside * value).astype(np.uint8)


def _rgb(mask, rng):
    base = rng.integers(0, 80, (*mask.shape, 3))
    return (base + mask[..., None] * np.array([150, 60, 120])).clip(0, 255).astype(np.uint8)


def write_glas(root, num_train=8, num_test_a=3, num_test_b=2, size=(30, 40), seed=0):
    """Warwick QU release: train_N.bmp / train_N_anno.bmp (instance ids), testA_*, testB_*, Grade.csv."""
    rng = np.random.default_rng(seed)
    folder = root / "Warwick QU Dataset (Released 2016_07_08)"
    folder.mkdir(parents=True)
    rows = ["name, patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)"]
    names = [f"train_{i}" for i in range(1, num_train + 1)]
    names += [f"testA_{i}" for i in range(1, num_test_a + 1)] + [f"testB_{i}" for i in range(1, num_test_b + 1)]
    for n, name in enumerate(names):
        instances = _blob(size, rng, 1) + _blob(size, rng, 2) * (1 - _blob(size, rng, 1))
        Image.fromarray(_rgb(instances > 0, rng)).save(folder / f"{name}.bmp")
        Image.fromarray(instances.astype(np.uint8)).save(folder / f"{name}_anno.bmp")
        rows.append(f"{name},{n // 2 + 1},benign,healthy")
    (folder / "Grade.csv").write_text("\n".join(rows) + "\n")
    return folder


def write_ph2(root, num_images=10, size=(36, 48), seed=0):
    """PH2Dataset/PH2 Dataset images/IMDnnn/IMDnnn_Dermoscopic_Image/IMDnnn.bmp and IMDnnn_lesion (0/255)."""
    rng = np.random.default_rng(seed)
    folder = root / "PH2Dataset" / "PH2 Dataset images"
    for i in range(num_images):
        case = f"IMD{2 * i + 2:03d}"
        lesion = _blob(size, rng)
        (folder / case / f"{case}_Dermoscopic_Image").mkdir(parents=True)
        (folder / case / f"{case}_lesion").mkdir(parents=True)
        (folder / case / f"{case}_roi").mkdir(parents=True)
        Image.fromarray(_rgb(lesion, rng)).save(folder / case / f"{case}_Dermoscopic_Image" / f"{case}.bmp")
        picture = Image.fromarray(lesion * 255)
        (picture.convert("1") if i % 2 else picture).save(folder / case / f"{case}_lesion" / f"{case}_lesion.bmp")
    return folder


def write_hmeps(root, num_subjects=6, frames=3, size=(40, 40), seed=0):
    """NN_human_mouse_eyes/fullFrames/*.jpeg, annotation/png/*.png (red = pupil), annotation/annotations.csv."""
    rng = np.random.default_rng(seed)
    folder = root / "NN_human_mouse_eyes"
    (folder / "fullFrames").mkdir(parents=True)
    (folder / "annotation" / "png").mkdir(parents=True)
    rows = ["filename,eye,blink,sub,exp"]
    for s in range(num_subjects):
        species = "human" if s % 2 else "mouse"
        for f in range(frames):
            name = f"{species[0]}-{s:02d}-{f}"
            pupil = _blob(size, rng)
            frame = (rng.integers(100, 200, size) - pupil * 90).astype(np.uint8)
            picture = Image.fromarray(frame)
            (picture.convert("RGB") if f == 0 else picture).save(folder / "fullFrames" / f"{name}.jpeg", quality=95)
            annotation = np.zeros((*size, 3), np.uint8)
            annotation[..., 0] = pupil * 255
            annotation[..., 1] = _blob(size, rng) * 255  # the eye region, not used
            Image.fromarray(annotation).save(folder / "annotation" / "png" / f"{name}.png")
            rows.append(f"{name}.jpeg,1,0,{s},{species}")
    (folder / "annotation" / "annotations.csv").write_text("\n".join(rows) + "\n")
    return folder


def la_case_ids(n):
    return [f"CASE{i:02d}ABCDEFGHIJKLMN"[:20] for i in range(n)]


def write_la_h5(root, num_train=8, num_test=2, shape=(30, 28, 20), seed=0):
    """2018LA_Seg_Training Set/<ID>/mri_norm2.h5 (image float32, label uint8), train.list, test.list."""
    import h5py

    rng = np.random.default_rng(seed)
    ids = la_case_ids(num_train + num_test)
    for case in ids:
        label = _blob(shape, rng)
        image = (rng.normal(0, 1, shape) + 2 * label).astype(np.float32)
        (root / "2018LA_Seg_Training Set" / case).mkdir(parents=True)
        with h5py.File(root / "2018LA_Seg_Training Set" / case / "mri_norm2.h5", "w") as f:
            f.create_dataset("image", data=image, compression="gzip")
            f.create_dataset("label", data=label, compression="gzip")
    (root / "train.list").write_text("\n".join(ids[:num_train]) + "\n")
    (root / "test.list").write_text("\n".join(ids[num_train:]) + "\n")
    return ids


def write_la_challenge(root, num_cases=8, shape=(20, 28, 30), seed=0):
    """Training Set/<ID>/lgemri.nrrd and laendo.nrrd (0/255), written with SimpleITK (array axes z, y, x)."""
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    ids = la_case_ids(num_cases)
    for case in ids:
        label = _blob(shape, rng)
        image = (rng.integers(0, 60, shape) + 100 * label).astype(np.uint8)
        (root / "Training Set" / case).mkdir(parents=True)
        for array, name in ((image, "lgemri.nrrd"), (label * 255, "laendo.nrrd")):
            volume = sitk.GetImageFromArray(array)
            volume.SetSpacing((0.625, 0.625, 0.625))
            sitk.WriteImage(volume, str(root / "Training Set" / case / name))
    return ids


def write_decathlon_heart(root, num_cases=8, shape=(30, 28, 20), seed=0):
    """Task02_Heart/dataset.json, imagesTr/la_NNN.nii.gz, labelsTr/la_NNN.nii.gz, imagesTs/."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    folder = root / "Task02_Heart"
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (folder / sub).mkdir(parents=True)
    training = []
    affine = np.diag([1.25, 1.25, 1.37, 1.0])
    for i in range(num_cases):
        name = f"la_{i + 3:03d}.nii.gz"
        label = _blob(shape, rng)
        nib.save(nib.Nifti1Image((rng.normal(0, 50, shape) + 300.0 * label).astype(np.float32), affine),
                 folder / "imagesTr" / name)
        nib.save(nib.Nifti1Image(label, affine), folder / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    nib.save(nib.Nifti1Image(rng.normal(0, 50, shape).astype(np.float32), affine), folder / "imagesTs" / "la_001.nii.gz")
    manifest = {"name": "LeftAtrium", "modality": {"0": "MRI"}, "labels": {"0": "background", "1": "left atrium"},
                "numTraining": num_cases, "numTest": 1, "training": training, "test": ["./imagesTs/la_001.nii.gz"]}
    (folder / "dataset.json").write_text(json.dumps(manifest, indent=2))
    return folder


def truncate(path, keep=40):
    """Cut a file to its first ``keep`` bytes, as an interrupted copy leaves it."""
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:keep])
