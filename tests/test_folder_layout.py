"""The generic folder layout (images/ + masks/, optional lists) through ``prepare``: splits, lists, groups and
bad input. The publishers' layouts and the split rule itself are in test_datasets.py."""

import os
import shutil
import tempfile

import numpy as np
import pytest
from PIL import Image

from helpers import groups, write_folder_dataset
from scripts.datasets import prepare
from scripts.datasets.files import saved_values
from scripts.datasets.splits import DatasetError

ACDC = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "ACDC")


def folder_datalist(root, num_classes, label_fraction=100.0, seed=0, check=True, **options):
    """The generic folder layout through ``prepare``; the datalist JSON goes to a fresh folder."""
    return prepare(
        "folder", root, tempfile.mkdtemp(), num_classes=num_classes, label_fraction=label_fraction, seed=seed,
        check=check, options=options,
    )


def test_splits_without_lists_are_disjoint_and_complete(tmp_path):
    names = write_folder_dataset(tmp_path, num_images=20)
    d = folder_datalist(str(tmp_path), num_classes=3, label_fraction=10)
    parts = {k: groups(v) for k, v in d.items()}
    assert sum(len(p) for p in parts.values()) == 20 and set().union(*parts.values()) == set(names)
    assert len(parts["validation"]) == 2 and len(parts["test"]) == 2
    assert len(parts["labeled"]) == 2  # ceil(16 * 10 / 100)
    assert all("label" in i for k in ("labeled", "validation", "test") for i in d[k])
    assert all("label" not in i for i in d["unlabeled"])


def test_lists_and_group_pattern_keep_groups_together(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    ids = [f"patient{p:03d}_frame{f:02d}" for p in range(10) for f in (1, 2)]
    for case in ids:
        for s in range(3):
            arr = np.zeros((8, 8), np.uint8)
            arr[2:4, 2:4] = 1
            Image.fromarray(arr).save(tmp_path / "images" / f"{case}_slice_{s:02d}.png")
            Image.fromarray(arr).save(tmp_path / "masks" / f"{case}_slice_{s:02d}.png")
    (tmp_path / "train.list").write_text("\n".join(ids[:16]))
    (tmp_path / "val.list").write_text("\n".join(ids[16:]))
    d = folder_datalist(str(tmp_path), 3, label_fraction=25, group_pattern=r"^(patient\d+)")
    assert groups(d["validation"]) == {"patient008", "patient009"}
    assert len(groups(d["labeled"])) == 2  # ceil(7 training patients * 25 %)
    labeled = groups(d["labeled"])
    assert len(d["labeled"]) == 2 * 2 * 3  # both frames, all slices of each labeled patient
    assert not labeled & groups(d["unlabeled"]) and not groups(d["test"]) & groups(d["unlabeled"])


def test_images_without_masks_are_unlabeled(tmp_path):
    write_folder_dataset(tmp_path, num_images=10)
    for i in range(5):
        os.remove(tmp_path / "masks" / f"case{i:03d}.png")
    d = folder_datalist(str(tmp_path), 3, label_fraction=100)
    unlabeled = {os.path.basename(i["image"]) for i in d["unlabeled"]}
    assert {f"case{i:03d}.png" for i in range(5)} <= unlabeled
    assert all(os.path.basename(i["image"]) not in unlabeled for k in ("validation", "test") for i in d[k])


def test_size_mismatch_names_the_file(tmp_path):
    write_folder_dataset(tmp_path, num_images=8)
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp_path / "masks" / "case003.png")
    with pytest.raises(DatasetError, match=r"case003\.png has size"):
        folder_datalist(str(tmp_path), 3)


def test_unexpected_label_value_names_the_file(tmp_path):
    write_folder_dataset(tmp_path, num_images=8)
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(tmp_path / "masks" / "case005.png")
    with pytest.raises(DatasetError, match=r"case005\.png has label values \[255\]"):
        folder_datalist(str(tmp_path), 3)


def test_unreadable_image_names_the_file(tmp_path):
    write_folder_dataset(tmp_path, num_images=8)
    (tmp_path / "images" / "case002.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DatasetError, match=r"cannot read .*case002\.png"):
        folder_datalist(str(tmp_path), 3)


def test_list_id_without_image_names_the_list(tmp_path):
    write_folder_dataset(tmp_path, num_images=8, lists={"train.list": ["case000", "case001", "missing_case"]})
    with pytest.raises(DatasetError, match=r"train\.list: no image .* matches id 'missing_case'"):
        folder_datalist(str(tmp_path), 3)


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found"):
        folder_datalist(str(tmp_path / "nowhere"), 3)
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        folder_datalist(str(tmp_path), 3)


def test_no_labeled_image_is_an_error(tmp_path):
    write_folder_dataset(tmp_path, num_images=8, with_masks=False)
    with pytest.raises(DatasetError, match="cannot carve a test split"):
        folder_datalist(str(tmp_path), 3)
    write_folder_dataset(tmp_path / "annotated", num_images=2)
    for name in ("case000.png", "case001.png"):  # only the validation and test images have masks
        shutil.copy(tmp_path / "annotated" / "masks" / name, tmp_path / "masks" / name)
    (tmp_path / "val.list").write_text("case000\n")
    (tmp_path / "test.list").write_text("case001\n")
    with pytest.raises(DatasetError, match="no labeled training images"):
        folder_datalist(str(tmp_path), 3)


def test_bad_label_fraction():
    with pytest.raises(DatasetError, match="label_fraction"):
        folder_datalist(".", 3, label_fraction=0)


@pytest.mark.skipif(not os.path.isdir(ACDC), reason="../shared/data/ACDC is not present")
def test_real_acdc_subset_loads_through_the_generic_folder_dataset():
    d = prepare("acdc", ACDC, tempfile.mkdtemp(), num_classes=4, label_fraction=5, check=False)
    train_patients = groups(d["labeled"]) | groups(d["unlabeled"])
    assert len(groups(d["labeled"])) == 4  # ceil(63 * 5 %), 7 of the 70 train.list patients held out as test
    assert len(train_patients) == 63 and len(groups(d["test"])) == 7 and len(groups(d["validation"])) == 10
    assert not train_patients & groups(d["validation"]) and not train_patients & groups(d["test"])
    assert len(d["labeled"]) + len(d["unlabeled"]) + len(d["validation"]) + len(d["test"]) == 1522


def test_nifti_and_mixed_extensions(tmp_path):
    import nibabel as nib

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        label = rng.integers(0, 2, (12, 10)).astype(np.uint8)  # NIfTI axes (x, y)
        nib.save(nib.Nifti1Image(label.astype(np.float32) * 100, np.eye(4)), tmp_path / "images" / f"c{i}.nii.gz")
        nib.save(nib.Nifti1Image(label, np.eye(4)), tmp_path / "masks" / f"c{i}.nii.gz")
    Image.fromarray(rng.integers(0, 2, (10, 10)).astype(np.uint8)).save(tmp_path / "images" / "p.png")
    Image.fromarray(rng.integers(0, 2, (10, 10)).astype(np.uint8)).save(tmp_path / "masks" / "p.png")
    d = folder_datalist(str(tmp_path), num_classes=2, label_fraction=100)
    assert sum(len(v) for v in d.values()) == 7
    nib.save(nib.Nifti1Image(rng.integers(0, 2, (10, 12)).astype(np.uint8), np.eye(4)), tmp_path / "masks" / "c1.nii.gz")
    with pytest.raises(DatasetError, match=r"c1\.nii\.gz has size \(10, 12\), its image .*c1\.nii\.gz has size \(12, 10\)"):
        folder_datalist(str(tmp_path), num_classes=2)
    os.remove(tmp_path / "masks" / "c1.nii.gz")   # a square PNG mask for a NIfTI image: refused, not transposed
    Image.fromarray(rng.integers(0, 2, (12, 12)).astype(np.uint8)).save(tmp_path / "masks" / "c1.png")
    with pytest.raises(DatasetError, match=r"c1\.png and its image .*c1\.nii\.gz are of different kinds"):
        folder_datalist(str(tmp_path), num_classes=2)


def test_masks_of_images_drawn_as_unlabeled_are_checked_too(tmp_path):
    names = write_folder_dataset(tmp_path, num_images=20)
    d = folder_datalist(str(tmp_path), num_classes=3, label_fraction=10)
    unlabeled = os.path.splitext(os.path.basename(d["unlabeled"][0]["image"]))[0]
    Image.fromarray(np.full((16, 16), 7, np.uint8)).save(tmp_path / "masks" / f"{unlabeled}.png")
    with pytest.raises(DatasetError, match=rf"{unlabeled}\.png has label values \[7\]"):
        folder_datalist(str(tmp_path), num_classes=3, label_fraction=10)
    assert unlabeled in names


def test_labeled_masks_that_are_all_background_stop_the_run(tmp_path):
    write_folder_dataset(tmp_path, num_images=12)
    for mask in (tmp_path / "masks").iterdir():
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(mask)
    with pytest.raises(DatasetError, match="all background"):
        folder_datalist(str(tmp_path), num_classes=3)


def test_a_written_datalist_is_checked_before_anything_runs(tmp_path):
    import json

    from scripts.datasets import read_datalist

    write_folder_dataset(tmp_path, num_images=12)
    d = folder_datalist(str(tmp_path), num_classes=3, label_fraction=50)
    del d["labeled"][0]["label"]
    (tmp_path / "datalist.json").write_text(json.dumps(d))
    with pytest.raises(DatasetError, match=r"datalist\.json: labeled image .* has no 'label'"):
        read_datalist(str(tmp_path / "datalist.json"), num_classes=3)


def test_label_fraction_may_carry_a_percent_sign_and_nonsense_is_refused(tmp_path):
    write_folder_dataset(tmp_path, num_images=20)
    assert folder_datalist(str(tmp_path), 3, label_fraction="10%") == folder_datalist(str(tmp_path), 3, label_fraction=10)
    with pytest.raises(DatasetError, match="label_fraction must be a number of percent such as 5, got 'ten'"):
        folder_datalist(str(tmp_path), 3, label_fraction="ten")


def _mask_of(item):
    return np.asarray(Image.open(item["label"]))


def test_masks_saved_as_other_values_are_mapped_with_mask_values(tmp_path):
    names = write_folder_dataset(tmp_path, num_images=10, num_classes=2)
    labels = {name: np.asarray(Image.open(tmp_path / "masks" / f"{name}.png")) for name in names}
    for name, label in labels.items():  # binary masks as image editors save them: 0/255
        Image.fromarray(label * 255).save(tmp_path / "masks" / f"{name}.png")
    Image.fromarray(np.stack([labels["case001"] * 255] * 3, -1)).save(tmp_path / "masks" / "case001.png")  # grey as RGB
    with pytest.raises(DatasetError, match=r"label values \[255\] outside 0\.\.1 .*'mask_values': \[0, 255\]"):
        folder_datalist(str(tmp_path), 2)

    out = tempfile.mkdtemp()
    for mask_values, expected in (([0, 255], labels), ([255, 0], {n: 1 - label for n, label in labels.items()})):
        d = prepare("folder", str(tmp_path), out, num_classes=2, options={"mask_values": mask_values})
        items = [i for part in ("labeled", "validation", "test") for i in d[part]]
        assert len(items) == 10
        for item in items:  # each mapping its own folder: a new mapping never reuses the last one's files
            name = os.path.splitext(os.path.basename(item["label"]))[0]
            assert os.path.dirname(item["label"]) == os.path.join(out, "masks-" + "-".join(map(str, mask_values)))
            np.testing.assert_array_equal(_mask_of(item), expected[name])


def test_mask_values_refuse_unlisted_values_colour_masks_and_bad_lists(tmp_path):
    names = write_folder_dataset(tmp_path, num_images=8, num_classes=2)
    for name in names:
        mask = np.asarray(Image.open(tmp_path / "masks" / f"{name}.png"))
        Image.fromarray(mask * 255).save(tmp_path / "masks" / f"{name}.png")
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(tmp_path / "masks" / "case004.png")
    with pytest.raises(DatasetError, match=r"case004\.png has values \[128\] that mask_values \[0, 255\] does not list"):
        folder_datalist(str(tmp_path), 2, mask_values=[0, 255])
    noisy = np.full((16, 16), 255, np.uint8)
    noisy[:4] = 3
    os.remove(tmp_path / "masks" / "case004.png")
    Image.fromarray(noisy).save(tmp_path / "masks" / "case004.jpg", quality=100)
    with pytest.raises(DatasetError, match=r"case004\.jpg has values \[.* JPEG blurs mask values: save masks as PNG"):
        folder_datalist(str(tmp_path), 2, mask_values=[0, 255])
    os.remove(tmp_path / "masks" / "case004.jpg")
    colour = np.zeros((16, 16, 3), np.uint8)
    colour[..., 0] = 255
    Image.fromarray(colour).save(tmp_path / "masks" / "case004.png")
    with pytest.raises(DatasetError, match=r"case004\.png is a colour picture"):
        folder_datalist(str(tmp_path), 2, mask_values=[0, 255])
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "masks" / "case004.png")
    d = folder_datalist(str(tmp_path), 2, mask_values="0,255")  # as a command-line option gives it
    assert all("masks-0-255" in i["label"] for i in d["labeled"])
    for bad in ([0, 0], [255], [0, 1.5], "0,x", 255):
        with pytest.raises(DatasetError, match="mask_values must list the distinct integer value of each class"):
            folder_datalist(str(tmp_path), 2, mask_values=bad)


def test_mask_values_map_nifti_masks_on_their_grid(tmp_path):
    import nibabel as nib

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rng = np.random.default_rng(0)
    affine = np.diag([0.7, 0.8, 2.0, 1.0])
    affine[:3, 3] = [10.0, -5.0, 3.0]
    labels = {}
    for i in range(6):
        labels[f"c{i}"] = rng.integers(0, 3, (12, 10, 4)).astype(np.uint8)
        nib.save(nib.Nifti1Image(labels[f"c{i}"].astype(np.float32), affine), tmp_path / "images" / f"c{i}.nii.gz")
        nib.save(nib.Nifti1Image(labels[f"c{i}"] * np.int16(100), affine), tmp_path / "masks" / f"c{i}.nii.gz")
    d = folder_datalist(str(tmp_path), 3, mask_values=[0, 100, 200])
    for item in (i for part in ("labeled", "validation", "test") for i in d[part]):
        mapped = nib.load(item["label"])
        name = os.path.basename(item["label"]).split(".")[0]
        np.testing.assert_array_equal(np.asarray(mapped.dataobj), labels[name])
        np.testing.assert_allclose(mapped.affine, affine)
        assert mapped.get_data_dtype() == np.uint8


def test_masks_named_with_a_suffix_pair_up_with_mask_suffix(tmp_path):
    names = write_folder_dataset(tmp_path, num_images=12)
    for name in names:
        os.rename(tmp_path / "masks" / f"{name}.png", tmp_path / "masks" / f"{name}_mask.png")
    os.remove(tmp_path / "masks" / "case003_mask.png")
    with pytest.raises(DatasetError, match=r"mask without an image: .*case000_mask\.png \(11 in all\); for masks named "
                                           r"<image>_mask: --dataset_options \"\{'mask_suffix': '_mask'\}\""):
        folder_datalist(str(tmp_path), 3)
    d = folder_datalist(str(tmp_path), 3, mask_suffix="_mask")
    pairs = {os.path.basename(i["image"]): os.path.basename(i["label"]) for p in ("labeled", "validation", "test")
             for i in d[p]}
    assert len(pairs) == 11 and all(label == image.replace(".png", "_mask.png") for image, label in pairs.items())
    assert "case003.png" in {os.path.basename(i["image"]) for i in d["unlabeled"]}
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "masks" / "case003.png")
    with pytest.raises(DatasetError, match=r"mask .*case003\.png does not end in mask_suffix '_mask'"):
        folder_datalist(str(tmp_path), 3, mask_suffix="_mask")


def test_saved_mask_values_give_one_value_per_class_that_a_png_holds():
    assert saved_values(None, 3) == [0, 1, 2]
    assert saved_values("[0, 255]", 2) == [0, 255]
    for bad, classes in (([0, 255], 3), ([0, 256], 2), ([-1, 255], 2)):
        with pytest.raises(DatasetError, match=r"mask_values .* must give one value in 0\.\.255 for each of the"):
            saved_values(bad, classes)


def test_a_colour_mask_and_pictures_in_a_subfolder_are_named_as_such(tmp_path):
    write_folder_dataset(tmp_path / "colour", num_images=12)
    mask = tmp_path / "colour" / "masks" / "case003.png"
    Image.fromarray(np.repeat(np.array(Image.open(mask))[..., None], 3, axis=-1)).save(mask)
    with pytest.raises(DatasetError, match=r"case003\.png is a colour picture \(3 channels\)"):
        folder_datalist(str(tmp_path / "colour"), num_classes=3)

    write_folder_dataset(tmp_path / "nested", num_images=12)
    (tmp_path / "nested" / "images" / "sub").mkdir()
    shutil.move(tmp_path / "nested" / "images" / "case003.png", tmp_path / "nested" / "images" / "sub" / "case003.png")
    with pytest.raises(DatasetError, match=r"images/sub holds pictures .* put images directly in the images folder"):
        folder_datalist(str(tmp_path / "nested"), num_classes=3)
    (tmp_path / "nested" / "images" / "case003").mkdir()   # a folder named as a case: read as a DICOM series
    shutil.move(tmp_path / "nested" / "images" / "sub" / "case003.png", tmp_path / "nested" / "images" / "case003")
    (tmp_path / "nested" / "images" / "sub").rmdir()
    with pytest.raises(DatasetError, match=r"images/case003 is a folder, read as a DICOM series, but holds no DICOM"):
        folder_datalist(str(tmp_path / "nested"), num_classes=3)
