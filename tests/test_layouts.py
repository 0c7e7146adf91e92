"""The layouts that other tools' users already hold: nnU-Net v2 raw datasets, any Decathlon task, SSL4MIS's
ACDC h5 release, and NRRD / MHA / MHD / DICOM series in the folder layout: each through ``prepare``, the
bundle's transforms and one training iteration, with the bad-input checks of the other layouts."""

import json
import os

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

import publisher_layouts as layouts
from helpers import groups
from scripts.datasets import prepare
from scripts.datasets.splits import DatasetError
from scripts.errors import own_error
from test_datasets import one_iteration


def names(items):
    return {os.path.basename(i["image"]).split(".")[0] for i in items}


def test_nnunet_raw_dataset_with_two_channels_trains_and_tests(tmp_path):
    folder = layouts.write_nnunet(tmp_path / "raw")
    d = prepare("nnunet", folder, tmp_path / "prepared", label_fraction=50)
    assert names(d["test"]) == {"blob_100"}  # the test image with a labelsTs file
    assert {"blob_008", "blob_009", "blob_101"} <= names(d["unlabeled"])  # no label: unlabeled, imagesTs too
    assert len(d["validation"]) == 1 and len(d["labeled"]) == 5  # 10 % of 11 training cases; ceil(10 * 50 %)
    stacked = nib.load(d["labeled"][0]["image"])  # the two channel files, stacked on the first one's grid
    assert stacked.shape == (14, 16, 12, 2) and np.allclose(stacked.header.get_zooms()[:3], (1.5, 1.5, 2.0))
    case = names(d["labeled"][:1]).pop()
    for c in range(2):
        channel = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "imagesTr" / f"{case}_{c:04d}.nii.gz")))
        assert np.allclose(stacked.get_fdata()[..., c], channel.transpose(2, 1, 0))
    assert d["labeled"][0]["label"].startswith(str(folder / "labelsTr"))  # NIfTI labels are used in place

    parser = one_iteration(
        tmp_path, ["datasets/volumes.yaml"], folder, dataset_layout="nnunet", num_classes=3, image_channels=2,
        patch_size=[8, 8, 8], spacing=[1.5, 1.5, 2.0],
    )
    parser.get_parsed_content("test#evaluation").run()
    with open(parser.get_parsed_content("test#report_path")) as f:
        report = json.load(f)
    assert report["num_images"] == 1 and len(report["dice"]["per_class"]) == 2

    without = prepare("nnunet", folder, tmp_path / "no_test", options={"test_images_unlabeled": "false"})
    assert "blob_101" not in names([i for part in without.values() for i in part])


def test_nnunet_checks_its_manifest_and_channels(tmp_path):
    folder = layouts.write_nnunet(tmp_path / "raw", channels=2)
    with pytest.raises(DatasetError, match=r"dataset\.json in .* declares 3 labels .* num_classes is 2"):
        prepare("nnunet", folder, tmp_path / "p", num_classes=2)
    os.remove(folder / "imagesTr" / "blob_003_0001.nii.gz")
    with pytest.raises(DatasetError, match=r"case blob_003 in .*imagesTr has channels \[0\]; .* declares 2"):
        prepare("nnunet", folder, tmp_path / "p")
    manifest = json.loads((folder / "dataset.json").read_text())
    manifest["labels"] = {"background": 0, "whole": [1, 2], "core": 2}
    (folder / "dataset.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=r"dataset\.json defines region-based labels"):
        prepare("nnunet", folder, tmp_path / "p")
    manifest["labels"] = {"background": "0", "blob": "1", "core": "2"}   # values as strings
    (folder / "dataset.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=r"dataset\.json: label 'background' has the value '0', not an integer"):
        prepare("nnunet", folder, tmp_path / "p")


def test_nnunet_rgb_pictures_keep_their_channels_in_one_file(tmp_path):
    folder = layouts.write_nnunet_rgb(tmp_path / "raw")
    d = prepare("nnunet", folder, tmp_path / "prepared", label_fraction=50)
    assert all(i["image"].endswith("_0000.png") for part in d.values() for i in part)  # used in place
    one_iteration(tmp_path, [], folder, dataset_layout="nnunet", num_classes=2, image_channels=3, spatial_size=[32, 32])
    os.remove(folder / "imagesTr" / "road_004_0000.png")  # a second channel file where the first is missing
    Image.fromarray(np.zeros((24, 28), np.uint8)).save(folder / "imagesTr" / "road_004_0001.png")
    with pytest.raises(DatasetError, match=r"case road_004 in .*imagesTr has channels \[1\]; .* declares 3"):
        prepare("nnunet", folder, tmp_path / "prepared")


def test_nnunet_mha_files_are_converted_and_errors_name_the_source(tmp_path):
    folder = layouts.write_nnunet(tmp_path / "raw", channels=1, ending=".mha")
    d = prepare("nnunet", folder, tmp_path / "prepared", label_fraction=100)
    item = d["test"][0]
    assert item["image"].endswith("blob_100.nii.gz") and item["label"].endswith("blob_100.nii.gz")
    image = nib.load(item["image"])
    source = sitk.ReadImage(str(folder / "imagesTs" / "blob_100_0000.mha"))
    assert np.allclose(image.get_fdata(), sitk.GetArrayFromImage(source).transpose(2, 1, 0))
    assert np.allclose(image.affine[:3, 3], [-10.0, 5.0, 3.0])  # LPS origin (10, -5, 3) in RAS
    label = sitk.ReadImage(str(folder / "labelsTr" / "blob_002.mha"))
    sitk.WriteImage(sitk.Add(label, 5), str(folder / "labelsTr" / "blob_002.mha"))
    with pytest.raises(DatasetError, match=r"blob_002\.nii\.gz \(converted from .*labelsTr/blob_002\.mha\) has label values"):
        prepare("nnunet", folder, tmp_path / "prepared")


def test_any_decathlon_task_with_its_test_images_as_unlabeled(tmp_path):
    folder = layouts.write_decathlon_multimodal(tmp_path / "msd")
    d = prepare("decathlon", folder, tmp_path / "prepared", label_fraction=100)
    assert {"prostate_008", "prostate_009"} == names(d["unlabeled"])  # the manifest's test images
    assert len(d["test"]) == 2 and len(d["validation"]) == 1 and len(d["labeled"]) == 5
    with pytest.raises(DatasetError, match=r"declares 3 labels"):
        prepare("decathlon", folder, tmp_path / "p", num_classes=4)
    parser = one_iteration(
        tmp_path, ["datasets/volumes.yaml"], folder, dataset_layout="decathlon", num_classes=3, image_channels=2,
        patch_size=[8, 8, 8], spacing=[0.6, 0.6, 3.6],
    )
    assert parser.get_parsed_content("network_def").spatial_dims == 3
    with pytest.raises(Exception) as caught:  # the bundle is told 1 channel, the images have 2
        one_iteration(tmp_path / "one", ["datasets/volumes.yaml"], folder, dataset_layout="decathlon", num_classes=3,
                      image_channels=1, patch_size=[8, 8, 8], spacing=[0.6, 0.6, 3.6])
    assert "has 2 channel(s), but image_channels is 1" in str(own_error(caught.value))


def test_ssl4mis_acdc_h5_slices_and_volumes(tmp_path):
    folder = layouts.write_ssl4mis_acdc(tmp_path / "ssl4mis")
    d = prepare("ssl4mis_acdc", folder.parent, tmp_path / "prepared", label_fraction=25)
    assert groups(d["validation"]) == {"patient009", "patient010"} and groups(d["test"]) == {"patient011", "patient012"}
    assert len(groups(d["labeled"])) == 2 and len(d["labeled"]) == 2 * 2 * 3  # 2 patients, 2 frames, 3 slices
    assert {i["volume"] for i in d["test"]} == set(layouts.acdc_volume_ids([11, 12]))
    item = next(i for i in d["test"] if i["image"].endswith("patient011_frame12_slice_2.nii.gz"))
    import h5py

    with h5py.File(folder / "data" / "patient011_frame12.h5") as f:
        assert np.allclose(nib.load(item["image"]).get_fdata(), f["image"][2].T)
        assert np.array_equal(nib.load(item["label"]).get_fdata(), f["label"][2].T)
    parser = one_iteration(tmp_path, ["datasets/acdc.yaml"], folder, dataset_layout="ssl4mis_acdc", spatial_size=[32, 32])
    parser.get_parsed_content("test#evaluation").run()
    with open(parser.get_parsed_content("test#report_path")) as f:
        report = json.load(f)
    assert report["num_images"] == 12 and "volume_dice" in report  # scored per slice and per volume

    (folder / "data" / "patient010_frame01.h5").unlink()
    with pytest.raises(DatasetError, match=r"val\.list names patient010_frame01, but .*patient010_frame01\.h5 does not"):
        prepare("ssl4mis_acdc", folder, tmp_path / "prepared")


def test_folder_layout_reads_nrrd_mha_mhd_and_dicom_series(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    shape = (6, 12, 10)  # z, y, x
    formats = [".nrrd", ".mha", ".mhd", "dicom", ".nii.gz", ".nrrd", ".mha", "dicom"]
    for i, ext in enumerate(formats):
        mask = np.zeros(shape, np.uint8)
        mask[1:5, 3:9, 2:8] = 1 + i % 2
        image = (rng.integers(0, 50, shape) + 100 * mask).astype(np.int16)
        if ext == "dicom":
            layouts.write_dicom_series(tmp_path / "images" / f"case{i}", image, spacing=(1.5, 1.5, 2.0))
        else:
            sitk.WriteImage(layouts._sitk_volume(image), str(tmp_path / "images" / f"case{i}{ext}"))
        mask_ext = ".nii.gz" if ext == "dicom" else ext
        reference = layouts._sitk_volume(mask)
        if ext == "dicom":
            reference.SetOrigin((0.0, 0.0, 0.0))
        sitk.WriteImage(reference, str(tmp_path / "masks" / f"case{i}{mask_ext}"))
    d = prepare("folder", tmp_path, tmp_path / "prepared", num_classes=3, label_fraction=100)
    items = [i for part in d.values() for i in part]
    assert len(items) == 8 and all(i["image"].endswith(".nii.gz") for i in items)
    dicom = nib.load(tmp_path / "prepared" / "images" / "case3.nii.gz")
    assert dicom.shape == (10, 12, 6) and np.allclose(dicom.header.get_zooms(), (1.5, 1.5, 2.0))
    assert (tmp_path / "prepared" / "masks" / "case2.nii.gz").exists()  # the .mhd header with its .raw data
    one_iteration(tmp_path, ["datasets/volumes.yaml"], tmp_path, num_classes=3, patch_size=[8, 8, 8],
                  spacing=[1.5, 1.5, 2.0])

    sitk.WriteImage(layouts._sitk_volume(np.full(shape, 7, np.uint8)), str(tmp_path / "masks" / "case1.mha"))
    with pytest.raises(DatasetError, match=r"case1\.nii\.gz \(converted from .*masks/case1\.mha\) has label values \[7\]"):
        prepare("folder", tmp_path, tmp_path / "prepared", num_classes=3)
    (tmp_path / "images" / "case6.mha").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match=r"cannot read .*images/case6\.mha"):
        prepare("folder", tmp_path, tmp_path / "prepared", num_classes=3)


@pytest.mark.slow
def test_an_nnunet_dataset_trains_and_evaluates_through_the_documented_commands(tmp_path):
    """``monai.bundle run training`` and ``evaluating`` on a user's nnU-Net raw dataset, as the bundle README
    documents them (train.yaml + volumes.yaml, --dataset_layout nnunet)."""
    import subprocess
    import sys

    from helpers import HANG_TIMEOUT
    from test_datasets import CONFIGS

    folder = layouts.write_nnunet(tmp_path / "raw")
    configs = str([os.path.join(CONFIGS, "train.yaml"), os.path.join(CONFIGS, "datasets", "volumes.yaml")])
    options = ["--dataset_dir", str(folder), "--dataset_layout", "nnunet", "--num_classes", "3", "--image_channels",
               "2", "--patch_size", "[8,8,8]", "--spacing", "[1.5,1.5,2.0]", "--bundle_root", str(tmp_path / "bundle"),
               "--label_fraction", "50"]
    short = ["--pretrain_epochs", "1", "--max_epochs", "1", "--epoch_length", "1", "--val_interval", "1", "--rounds", "1"]
    for run_id, files, extra in (("training", configs, short),
                                 ("evaluating", configs[:-1] + f", '{os.path.join(CONFIGS, 'evaluate.yaml')}']", [])):
        result = subprocess.run([sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", files,
                                 *options, *extra], cwd=tmp_path, capture_output=True, text=True, timeout=HANG_TIMEOUT)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    with open(tmp_path / "bundle" / "models" / "test_metrics.json") as f:
        report = json.load(f)
    assert report["num_images"] == 1 and {"dice", "hd95_mm"} <= set(report)
    assert os.path.isfile(tmp_path / "bundle" / "eval" / "predictions" / "blob_100_seg.nii.gz")
