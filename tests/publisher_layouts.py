"""Tiny datasets written in their publishers' real layouts and file formats (synthetic pixels)."""

import json
import locale
import os
import zlib

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


def write_glas_png(root, num_train=8, num_test_a=3, num_test_b=2, size=(30, 40), seed=0):
    """The PNG release (as in HuangQYun/WSSS-Gland-Segmentation): masks (0/255) in UAGlandSeg/labels, the
    images of the same names spread over splits/{train,val,test}_images, the test masks again in test_labels."""
    rng = np.random.default_rng(seed)
    labels, splits = root / "UAGlandSeg" / "labels", root / "UAGlandSeg" / "train_out" / "glas" / "uagland" / "splits"
    for folder in (labels, *(splits / f"{s}_images" for s in ("train", "val", "test")), splits / "test_labels"):
        folder.mkdir(parents=True)
    names = [f"train_{i}" for i in range(1, num_train + 1)]
    names += [f"testA_{i}" for i in range(1, num_test_a + 1)] + [f"testB_{i}" for i in range(1, num_test_b + 1)]
    for n, name in enumerate(names):
        glands = _blob(size, rng) | _blob(size, rng)
        split = "test" if name.startswith("test") else ("val" if n % 4 == 3 else "train")
        Image.fromarray(_rgb(glands, rng)).save(splits / f"{split}_images" / f"{name}.png")
        Image.fromarray(glands * 255).save(labels / f"{name}.png")
        if split == "test":
            Image.fromarray(glands * 255).save(splits / "test_labels" / f"{name}.png")
    return root / "UAGlandSeg"


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


def write_decathlon(root, task, prefix, labels, modalities=("MRI",), num_cases=8, num_test=1, shape=(30, 28, 20),
                    spacing=(1.25, 1.25, 1.37), seed=0):
    """<task>/dataset.json (``modality``, ``labels`` {"0": name}, ``training``, ``test``), imagesTr/<prefix>_NNN.nii.gz
    (4D, channels last, for several modalities), labelsTr/ (0..K-1 blobs), imagesTs/ (the unlabeled test images)."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    folder = root / task
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (folder / sub).mkdir(parents=True)
    affine, training, tests = np.diag([*spacing, 1.0]), [], []
    for i in range(num_cases + num_test):
        name = f"{prefix}_{i:03d}.nii.gz"
        label = np.minimum(sum(_blob(shape, rng) * k for k in range(1, len(labels))), len(labels) - 1).astype(np.uint8)
        channels = [rng.normal(0, 50, shape) + (300.0 - 60 * c) * (label > 0) for c in range(len(modalities))]
        image = (channels[0] if len(channels) == 1 else np.stack(channels, -1)).astype(np.float32)
        if i < num_cases:
            nib.save(nib.Nifti1Image(image, affine), folder / "imagesTr" / name)
            nib.save(nib.Nifti1Image(label, affine), folder / "labelsTr" / name)
            training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
        else:
            nib.save(nib.Nifti1Image(image, affine), folder / "imagesTs" / name)
            tests.append(f"./imagesTs/{name}")
    manifest = {"name": task, "modality": dict(enumerate(modalities)), "labels": dict(enumerate(labels)),
                "numTraining": num_cases, "numTest": num_test, "training": training, "test": tests}
    (folder / "dataset.json").write_text(json.dumps(manifest, indent=2))
    return folder


def write_decathlon_heart(root, **options):
    """Task02_Heart: one MRI channel, background and left atrium."""
    return write_decathlon(root, "Task02_Heart", "la", ["background", "left atrium"], **options)


def write_decathlon_multimodal(root, **options):
    """Task05_Prostate-like: two modalities (4D NIfTI), three labels, two test images."""
    return write_decathlon(root, "Task05_Prostate", "prostate", ["background", "PZ", "TZ"], modalities=("T2", "ADC"),
                           num_test=2, shape=(14, 12, 10), spacing=(0.6, 0.6, 3.6), **options)


def _sitk_volume(array, spacing=(1.5, 1.5, 2.0)):
    import SimpleITK as sitk

    volume = sitk.GetImageFromArray(array)  # array axes z, y, x
    volume.SetSpacing(spacing)
    volume.SetOrigin((10.0, -5.0, 3.0))
    return volume


def write_nnunet(root, num_train=8, num_unlabeled=2, num_test=2, channels=2, ending=".nii.gz", shape=(12, 16, 14),
                 seed=0):
    """Dataset042_Blobs/dataset.json, imagesTr/<case>_000C<ending> (one file per channel), labelsTr/<case><ending>
    (0 background, 1 core, 2 rim) for the first ``num_train`` cases, imagesTs/ and labelsTs/ (first test case)."""
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    folder = root / "Dataset042_Blobs"
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (folder / sub).mkdir(parents=True)
    cases = [("imagesTr", f"blob_{i:03d}") for i in range(num_train + num_unlabeled)]
    cases += [("imagesTs", f"blob_{i:03d}") for i in range(100, 100 + num_test)]
    for n, (images, case) in enumerate(cases):
        label = _blob(shape, rng) + _blob(shape, rng) * 2
        label = np.where(label > 2, 2, label).astype(np.uint8)
        for c in range(channels):
            image = (rng.normal(0, 20, shape) + (60 + 30 * c) * (label > 0)).astype(np.float32)
            sitk.WriteImage(_sitk_volume(image), str(folder / images / f"{case}_{c:04d}{ending}"))
        labels = "labelsTr" if images == "imagesTr" else "labelsTs"
        if (images == "imagesTr" and n < num_train) or (images == "imagesTs" and n == num_train + num_unlabeled):
            sitk.WriteImage(_sitk_volume(label), str(folder / labels / f"{case}{ending}"))
    manifest = {"channel_names": {str(c): f"MR{c}" for c in range(channels)},
                "labels": {"background": 0, "core": 1, "rim": 2}, "numTraining": num_train + num_unlabeled,
                "file_ending": ending}
    (folder / "dataset.json").write_text(json.dumps(manifest, indent=2))
    return folder


def write_nnunet_rgb(root, num_cases=10, size=(24, 28), seed=0):
    """Dataset120_Roads-like 2D dataset: imagesTr/<case>_0000.png holding RGB (nnU-Net's one exception to a file
    per channel, with channel_names R, G, B), labelsTr/<case>.png (0 background, 1 road)."""
    rng = np.random.default_rng(seed)
    folder = root / "Dataset120_Roads"
    for sub in ("imagesTr", "labelsTr"):
        (folder / sub).mkdir(parents=True)
    for i in range(num_cases):
        label = _blob(size, rng)
        Image.fromarray(_rgb(label, rng)).save(folder / "imagesTr" / f"road_{i:03d}_0000.png")
        Image.fromarray(label).save(folder / "labelsTr" / f"road_{i:03d}.png")
    manifest = {"channel_names": {"0": "R", "1": "G", "2": "B"}, "labels": {"background": 0, "road": 1},
                "numTraining": num_cases, "file_ending": ".png"}
    (folder / "dataset.json").write_text(json.dumps(manifest, indent=2))
    return folder


def acdc_volume_ids(patients):
    return [f"patient{p:03d}_frame{f:02d}" for p in patients for f in (1, 12)]


def write_ssl4mis_acdc(root, train=range(1, 9), val=range(9, 11), test=range(11, 13), shape=(3, 24, 20), seed=0):
    """ACDC/data/slices/<volume>_slice_<z>.h5 (training), ACDC/data/<volume>.h5 (every volume; z, y, x),
    train_slices.list, train.list, val.list, test.list."""
    import h5py

    rng = np.random.default_rng(seed)
    folder = root / "ACDC"
    (folder / "data" / "slices").mkdir(parents=True)
    slices = []
    for volume in acdc_volume_ids([*train, *val, *test]):
        label = np.minimum(_blob(shape, rng) + _blob(shape, rng) * 2 + _blob(shape, rng), 3).astype(np.uint8)
        image = (rng.uniform(0, 0.3, shape) + 0.2 * label).astype(np.float32)
        with h5py.File(folder / "data" / f"{volume}.h5", "w") as f:
            f["image"], f["label"] = image, label
        if int(volume[7:10]) in train:
            for z in range(shape[0]):
                with h5py.File(folder / "data" / "slices" / f"{volume}_slice_{z}.h5", "w") as f:
                    f["image"], f["label"] = image[z], label[z]
                slices.append(f"{volume}_slice_{z}")
    (folder / "train_slices.list").write_text("\n".join(slices) + "\n")
    for name, patients in (("train", train), ("val", val), ("test", test)):
        (folder / f"{name}.list").write_text("\n".join(acdc_volume_ids(patients)) + "\n")
    return folder


def write_dicom_series(folder, array, spacing=(0.8, 0.8, 2.5)):
    """One DICOM series (a file per slice, array axes z, y, x, int16) in ``folder``, as a scanner exports it."""
    import SimpleITK as sitk

    folder.mkdir(parents=True)
    volume = sitk.GetImageFromArray(array.astype(np.int16))
    volume.SetSpacing(spacing)
    locale_before = locale.setlocale(locale.LC_ALL)  # GDCM's writer sets the C locale (ASCII) process-wide
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series = "1.2.826.0.1.3680043.2.1125.1." + str(zlib.crc32(str(folder).encode()))
    for z in range(volume.GetDepth()):
        image = volume[:, :, z]
        for tag, value in (("0020|000e", series), ("0020|0032", "\\".join(map(str, volume.TransformIndexToPhysicalPoint((0, 0, z))))),
                           ("0020|0013", str(z + 1)), ("0008|0060", "MR"), ("0028|0030", f"{spacing[1]}\\{spacing[0]}"),
                           ("0018|0050", str(spacing[2])), ("0020|0037", "1\\0\\0\\0\\1\\0")):
            image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{z:03d}.dcm"))
        writer.Execute(image)
    locale.setlocale(locale.LC_ALL, locale_before)


def truncate(path, keep=40):
    """Cut a file to its first ``keep`` bytes, as an interrupted copy leaves it."""
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:keep])
