"""Each publisher's layout through its preparer, the datalist, the bundle's transforms and one training
iteration; the real ../shared subsets; bad inputs; split rules; the download step offline."""

import glob
import json
import os
import random

import numpy as np
import pytest
from monai.bundle import ConfigParser
from PIL import Image

import publisher_layouts as layouts
from helpers import HANG_TIMEOUT, VOLUME_LA, groups
from scripts.datasets import prepare, read_datalist
from scripts.datasets.__main__ import main as datasets_cli
from scripts.datasets.download import download, fetch_verified
from scripts.datasets.splits import Case, DatasetError, make_datalist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "bundle", "configs")
SHARED = os.path.join(ROOT, "..", "shared", "data")


def one_iteration(tmp_path, overlays, dataset_dir, **overrides):
    """Parse train.yaml + dataset overlays as the bundle does, then run one co-training iteration and
    one validation on the prepared data; returns the parser."""
    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, name) for name in ["train.yaml", *overlays]])
    settings = {
        "dataset_dir": str(dataset_dir), "output_dir": str(tmp_path / "eval"), "ckpt_dir": str(tmp_path / "models"),
        "pretrain_teacher": False, "max_epochs": 1, "epoch_length": 1, "val_interval": 1, "rounds": 1,
        "batch_size": 2, "labeled_batch_size": 1, "label_fraction": 50,
    }
    for key, value in {**settings, **overrides}.items():
        parser[key] = value
    trainer = parser.get_parsed_content("train#trainer")
    trainer.run()
    assert trainer.state.iteration == 1
    assert np.isfinite(trainer.state.output["loss"].item())
    evaluator = parser.get_parsed_content("validate#evaluator")
    assert 0.0 <= evaluator.state.metrics["val_mean_dice"] <= 1.0
    return parser


# ---- every publisher layout, end to end


def test_glas_release(tmp_path):
    layouts.write_glas(tmp_path / "GlaS")
    d = prepare("glas", tmp_path / "GlaS", tmp_path / "prepared", label_fraction=50)
    assert len(d["test"]) == 5 and {os.path.basename(i["image"])[:5] for i in d["test"]} == {"testA", "testB"}
    assert len(d["labeled"]) + len(d["unlabeled"]) + len(d["validation"]) == 8
    assert all(g.startswith("patient_") for p in ("labeled", "unlabeled", "validation") for g in groups(d[p]))
    mask = np.asarray(Image.open(d["test"][0]["label"]))
    assert set(np.unique(mask)) <= {0, 1} and mask.max() == 1  # instances binarised
    one_iteration(tmp_path, ["datasets/glas.yaml"], tmp_path / "GlaS", spatial_size=[32, 32])


def test_glas_png_release(tmp_path):
    root = layouts.write_glas_png(tmp_path / "glas")
    d = prepare("glas", tmp_path / "glas", tmp_path / "prepared", label_fraction=50)
    assert len(d["test"]) == 5 and {os.path.basename(i["image"])[:5] for i in d["test"]} == {"testA", "testB"}
    train = [i for p in ("labeled", "unlabeled", "validation") for i in d[p]]
    assert len(train) == 8 and all(os.path.basename(i["image"]).startswith("train_") for i in train)
    assert all("_images" in i["image"] for p in d.values() for i in p)  # never a mask folder's file as an image
    assert groups(d["validation"]) == {os.path.basename(i["image"])[:-4] for i in d["validation"]}  # per image
    mask = np.asarray(Image.open(d["test"][0]["label"]))
    assert set(np.unique(mask)) == {0, 1}  # 0/255 read as background and gland
    one_iteration(tmp_path, ["datasets/glas.yaml"], tmp_path / "glas", spatial_size=[32, 32])
    os.remove(root / "labels" / "train_3.png")
    with pytest.raises(DatasetError, match=r"train_3\.png has no mask .*labels/train_3\.png"):
        prepare("glas", tmp_path / "glas", tmp_path / "p2")
    os.remove(root / "train_out" / "glas" / "uagland" / "splits" / "test_images" / "testB_1.png")
    with pytest.raises(DatasetError, match=r"mask .*labels/testB_1\.png has no image"):
        prepare("glas", tmp_path / "glas", tmp_path / "p3")
    os.remove(next(root.rglob("train_3.png")))  # the image whose mask went above
    os.remove(root / "labels" / "testB_1.png")   # the mask whose image went above
    Image.fromarray(np.full((30, 40), 7, np.uint8)).save(root / "labels" / "testA_1.png")
    with pytest.raises(DatasetError, match=r"mask .*labels/testA_1\.png has values \[7\]"):
        prepare("glas", tmp_path / "glas", tmp_path / "p4")


def test_ph2_release(tmp_path):
    layouts.write_ph2(tmp_path / "PH2")
    d = prepare("ph2", tmp_path / "PH2", tmp_path / "prepared", label_fraction=20)
    assert [len(d[p]) for p in ("test", "validation")] == [2, 1]  # 20 % and 10 % of 10 images
    assert len(d["labeled"]) == 2  # ceil(7 * 20 %)
    for item in d["labeled"] + d["test"]:  # both the 0/255 and the 1-bit lesion BMPs become 0/1
        assert set(np.unique(np.asarray(Image.open(item["label"])))) == {0, 1}
    one_iteration(tmp_path, ["datasets/ph2.yaml"], tmp_path / "PH2", spatial_size=[32, 32])


def test_hmeps_release_and_species_subsets(tmp_path):
    layouts.write_hmeps(tmp_path / "HMEPS")
    d = prepare("hmeps", tmp_path / "HMEPS", tmp_path / "prepared", label_fraction=50)
    parts = [groups(d[p]) for p in ("labeled", "unlabeled", "validation", "test")]
    assert sum(len(p) for p in parts) == 6 and len(set().union(*parts)) == 6  # subjects never straddle splits
    human = prepare("hmeps", tmp_path / "HMEPS", tmp_path / "human", options={"subset": "human"})
    images = [os.path.basename(i["image"]) for p in human.values() for i in p]
    assert len(images) == 9 and all(name.startswith("h-") for name in images)
    one_iteration(tmp_path, ["datasets/hmeps.yaml"], tmp_path / "HMEPS", spatial_size=[32, 32])  # RGB and grey JPEGs


@pytest.mark.parametrize("dataset, writer", [
    ("la", layouts.write_la_h5), ("la_challenge", layouts.write_la_challenge), ("heart", layouts.write_decathlon_heart),
])
def test_left_atrium_sources_in_3d(tmp_path, dataset, writer):
    writer(tmp_path / "LA")
    d = prepare(dataset, tmp_path / "LA", tmp_path / "prepared", num_labeled=2, check=True)
    assert len(d["labeled"]) == 2 and all(i["image"].endswith(".nii.gz") for p in d.values() for i in p)
    if dataset == "la":
        assert groups(d["test"]) == set(layouts.la_case_ids(10)[8:])  # test.list
        first = [g for g in layouts.la_case_ids(8) if g not in groups(d["validation"])][:2]
        d_first = prepare(dataset, tmp_path / "LA", tmp_path / "first", num_labeled=2, labeled_selection="first")
        assert sorted(groups(d_first["labeled"])) == sorted(first)  # "N labeled" = the first N of train.list
    spacing = [1.25, 1.25, 1.37] if dataset == "heart" else [0.625, 0.625, 0.625]
    parser = one_iteration(
        tmp_path, VOLUME_LA, tmp_path / "LA", dataset_layout=dataset, patch_size=[16, 16, 16], spacing=spacing,
        num_labeled=2, label_fraction=100,
    )
    assert parser.get_parsed_content("network_def").spatial_dims == 3


def test_a_folder_of_your_own_volumes_needs_only_the_3d_overlay(tmp_path):
    import nibabel as nib

    rng = np.random.default_rng(0)
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    for folder in ("images", "masks"):
        (tmp_path / "volumes" / folder).mkdir(parents=True)
    for case in range(10):
        mask = np.zeros((20, 20, 12), np.uint8)
        mask[5:12, 6:14, 3:9] = 1
        image = (rng.normal(size=mask.shape) + 2 * mask).astype(np.float32)
        nib.save(nib.Nifti1Image(image, affine), tmp_path / "volumes" / "images" / f"case{case:02d}.nii.gz")
        nib.save(nib.Nifti1Image(mask, affine), tmp_path / "volumes" / "masks" / f"case{case:02d}.nii.gz")
    parser = one_iteration(tmp_path, ["datasets/volumes.yaml"], tmp_path / "volumes", num_classes=2,
                           patch_size=[16, 16, 8], spacing=[1.5, 1.5, 2.0])
    assert parser.get_parsed_content("network_def").spatial_dims == 3
    parser.get_parsed_content("test#evaluation").run()  # on the input grid, saved as NIfTI, with surface distances in mm
    with open(parser.get_parsed_content("test#report_path")) as f:
        assert {"dice", "jaccard", "hd95_mm", "asd_mm"} <= set(json.load(f))
    assert glob.glob(str(tmp_path / "eval" / "predictions" / "case*_seg.nii.gz"))


def test_converted_la_volumes_keep_the_challenge_geometry(tmp_path):
    import nibabel as nib

    layouts.write_la_challenge(tmp_path / "LA", num_cases=4)
    d = prepare("la_challenge", tmp_path / "LA", tmp_path / "prepared", check=False)
    image, label = nib.load(d["test"][0]["image"]), nib.load(d["test"][0]["label"])
    assert image.shape == label.shape == (30, 28, 20)  # NRRD z, y, x array -> NIfTI x, y, z
    assert np.allclose(image.header.get_zooms(), 0.625) and set(np.unique(label.get_fdata())) == {0, 1}


def test_datalist_json_round_trip_and_command_line(tmp_path, capsys):
    layouts.write_ph2(tmp_path / "PH2")
    output = tmp_path / "out"
    code = datasets_cli(["prepare", "ph2", "--root", str(tmp_path / "PH2"), "--fraction", "20", "--seed", "3",
                         "--output", str(output)])
    assert code == 0
    written = json.loads((output / "datalist.json").read_text())
    assert written["dataset"] == "ph2" and written["label_fraction"] == 20 and written["seed"] == 3
    again = read_datalist(str(output / "datalist.json"), num_classes=2)
    assert again == prepare("ph2", tmp_path / "PH2", output, label_fraction=20, seed=3)
    assert datasets_cli(["prepare", "ph2", "--root", str(tmp_path / "nowhere"), "--output", str(output)]) == 1
    assert "dataset folder not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        datasets_cli(["prepare", "ph2", "--root", str(tmp_path / "PH2"), "--option", "subset"])
    assert "expected KEY=VALUE, got 'subset'" in capsys.readouterr().err


# ---- the real subsets in ../shared/data


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED, "LA")), reason="../shared/data/LA is not present")
def test_real_la_subset(tmp_path):
    d = prepare("la", os.path.join(SHARED, "LA"), tmp_path / "prepared", num_labeled=4, labeled_selection="first")
    train = groups(d["labeled"]) | groups(d["unlabeled"])
    with open(os.path.join(SHARED, "LA", "train.list")) as f:
        train_list = [line.strip() for line in f if line.strip()]
    assert len(train_list) == 76 and len(train) + len(groups(d["validation"])) == 76 and len(d["test"]) == 4
    assert groups(d["labeled"]) == set(train_list[:4])  # the literature's "4 labeled": the first 4 of the list
    parser = ConfigParser()
    parser.read_config([*[os.path.join(CONFIGS, name) for name in ["train.yaml", *VOLUME_LA]]])
    for key, value in {"dataset_dir": os.path.join(SHARED, "LA"), "output_dir": str(tmp_path / "eval"),
                       "prepared_dir": str(tmp_path / "prepared"), "label_fraction": 10,
                       "patch_size": [32, 32, 32]}.items():
        parser[key] = value
    d = parser.get_parsed_content("datalist")   # the literature's 10 % of LA: 8 of the official 80
    assert groups(d["labeled"]) == set(train_list[:8]) and len(groups(d["validation"])) == 8
    assert len(groups(d["unlabeled"])) == 76 - 8 - 8 and not groups(d["validation"]) & set(train_list[:8])
    batch = next(iter(parser.get_parsed_content("train#labeled_dataloader")))
    assert batch["image"].shape == (2, 1, 32, 32, 32) and set(batch["label"].unique().tolist()) <= {0, 1}


# ---- bad input: a clear error naming the file or setting, before training


def test_missing_annotations_name_the_file(tmp_path):
    glas = layouts.write_glas(tmp_path / "GlaS")
    os.remove(glas / "train_3_anno.bmp")
    with pytest.raises(DatasetError, match=r"train_3\.bmp has no annotation .*train_3_anno\.bmp"):
        prepare("glas", tmp_path / "GlaS", tmp_path / "p1")
    ph2 = layouts.write_ph2(tmp_path / "PH2")
    os.remove(ph2 / "IMD004" / "IMD004_lesion" / "IMD004_lesion.bmp")
    with pytest.raises(DatasetError, match=r"IMD004\.bmp has no lesion mask"):
        prepare("ph2", tmp_path / "PH2", tmp_path / "p2")
    hmeps = layouts.write_hmeps(tmp_path / "HMEPS")
    os.remove(hmeps / "annotation" / "png" / "h-01-2.png")
    with pytest.raises(DatasetError, match=r"h-01-2\.jpeg has no pupil annotation"):
        prepare("hmeps", tmp_path / "HMEPS", tmp_path / "p3")


def test_mask_size_mismatch_names_the_file(tmp_path):
    glas = layouts.write_glas(tmp_path / "GlaS")
    Image.fromarray(np.ones((20, 20), np.uint8)).save(glas / "testA_2_anno.bmp")
    with pytest.raises(DatasetError, match=r"testA_2\.png \(converted from .*testA_2_anno\.bmp\) has size .* "
                                           r"its image .*testA_2\.bmp has size"):
        prepare("glas", tmp_path / "GlaS", tmp_path / "prepared")


def test_unexpected_label_values_name_the_file(tmp_path):
    ph2 = layouts.write_ph2(tmp_path / "PH2")
    Image.fromarray(np.full((36, 48), 128, np.uint8)).save(ph2 / "IMD006" / "IMD006_lesion" / "IMD006_lesion.bmp")
    with pytest.raises(DatasetError, match=r"IMD006_lesion\.bmp has values \[128\]"):
        prepare("ph2", tmp_path / "PH2", tmp_path / "p1")
    layouts.write_la_h5(tmp_path / "LA", num_train=4, num_test=1)
    import h5py

    with h5py.File(tmp_path / "LA" / "2018LA_Seg_Training Set" / layouts.la_case_ids(5)[1] / "mri_norm2.h5", "a") as f:
        f["label"][0, 0, 0] = 2
    with pytest.raises(DatasetError, match=r"mri_norm2\.h5 has values \[2\]"):
        prepare("la", tmp_path / "LA", tmp_path / "p2")


@pytest.mark.parametrize("dataset, writer, victim", [
    ("glas", layouts.write_glas, "Warwick QU Dataset (Released 2016_07_08)/train_2.bmp"),
    ("la", layouts.write_la_h5, "2018LA_Seg_Training Set/CASE01ABCDEFGHIJKLMN/mri_norm2.h5"),
    ("la_challenge", layouts.write_la_challenge, "Training Set/CASE01ABCDEFGHIJKLMN/laendo.nrrd"),
    ("heart", layouts.write_decathlon_heart, "Task02_Heart/imagesTr/la_004.nii.gz"),
])
def test_truncated_files_name_the_file(tmp_path, dataset, writer, victim):
    writer(tmp_path / "data")
    layouts.truncate(tmp_path / "data" / victim)
    with pytest.raises(DatasetError, match=f"cannot read .*{os.path.basename(victim)}"):
        prepare(dataset, tmp_path / "data", tmp_path / "prepared", label_fraction=100)


@pytest.mark.parametrize("dataset", ["folder", "acdc", "glas", "ph2", "hmeps", "la", "la_challenge", "heart"])
def test_empty_folder_is_an_error(tmp_path, dataset):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no .*" + str(tmp_path / "empty")):
        prepare(dataset, tmp_path / "empty", tmp_path / "prepared", num_classes=2 if dataset == "folder" else None)


def test_settings_that_leave_no_labeled_item(tmp_path):
    layouts.write_ph2(tmp_path / "PH2")
    for fraction in (0, -5, 120):
        with pytest.raises(DatasetError, match="label_fraction must be in"):
            prepare("ph2", tmp_path / "PH2", tmp_path / "p", label_fraction=fraction)
    with pytest.raises(DatasetError, match="num_labeled must be at least 1"):
        prepare("ph2", tmp_path / "PH2", tmp_path / "p", num_labeled=0)
    with pytest.raises(DatasetError, match="ph2 has 2 classes .* num_classes is 3"):
        prepare("ph2", tmp_path / "PH2", tmp_path / "p", num_classes=3)
    with pytest.raises(DatasetError, match="needs a training list"):
        prepare("ph2", tmp_path / "PH2", tmp_path / "p", labeled_selection="first")


@pytest.mark.slow
def test_bundle_run_reports_bad_data_before_training(tmp_path):
    import subprocess
    import sys

    layouts.write_glas(tmp_path / "GlaS")
    os.remove(tmp_path / "GlaS" / "Warwick QU Dataset (Released 2016_07_08)" / "train_5_anno.bmp")
    files = str([os.path.join(CONFIGS, "train.yaml"), os.path.join(CONFIGS, "datasets", "glas.yaml")])
    result = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", files, "--dataset_dir",
         str(tmp_path / "GlaS"), "--output_dir", str(tmp_path / "eval"), "--ckpt_dir", str(tmp_path / "models")],
        cwd=tmp_path, capture_output=True, text=True, timeout=HANG_TIMEOUT,
    )
    assert result.returncode != 0
    assert "train_5_anno.bmp" in result.stderr and "Epoch" not in result.stdout + result.stderr
    assert not (tmp_path / "models").exists()


# ---- the split rule


def random_cases(rng, num_groups=40, annotated=0.8):
    cases = []
    for g in range(num_groups):
        labeled = rng.random() < annotated
        for k in range(int(rng.integers(1, 4))):
            cases.append(Case(image=f"/d/g{g:03d}_{k}.png", label=f"/m/g{g:03d}_{k}.png" if labeled else None,
                              group=f"g{g:03d}"))
    return cases


@pytest.mark.parametrize("fraction", [1, 2, 5, 10, 20, 100])
def test_split_rule_is_disjoint_complete_deterministic_and_order_free(fraction):
    rng = np.random.default_rng(fraction)
    cases = random_cases(rng)
    d = make_datalist(cases, label_fraction=fraction, seed=7)
    parts = [groups(d[p]) for p in ("labeled", "unlabeled", "validation", "test")]
    assert sum(len(p) for p in parts) == len({c.group for c in cases}) == len(set().union(*parts))
    train = len(parts[0]) + len(parts[1])
    annotated_train = len({c.group for c in cases if c.label} - parts[2] - parts[3])
    assert len(parts[0]) == min(annotated_train, max(1, -(-train * fraction // 100)))
    shuffled = list(cases)
    random.Random(1).shuffle(shuffled)
    assert make_datalist(shuffled, label_fraction=fraction, seed=7) == d
    other = make_datalist(cases, label_fraction=fraction, seed=8)
    assert groups(other["validation"]) == parts[2] and groups(other["test"]) == parts[3]  # the seed draws labels
    assert fraction == 100 or groups(other["labeled"]) != parts[0]
    assert all("label" in i for p in ("labeled", "validation", "test") for i in d[p])


@pytest.mark.parametrize("split_seed", range(8))
def test_the_first_n_labeled_are_the_first_n_of_the_list_whatever_validation_draws(split_seed):
    order = [f"v{i:02d}" for i in range(20)]   # a train.list, not in sorted order below
    order = order[5:] + order[:5]
    cases = [Case(f"/d/{g}.nii.gz", f"/m/{g}.nii.gz", g) for g in [*order, "t1", "t2"]]
    for num_labeled, fraction, count in ((4, 100.0, 4), (None, 20.0, 3)):   # 20 % of the 15 left after validation
        d = make_datalist(cases, {"train": order, "test": ["t1", "t2"]}, label_fraction=fraction,
                          num_labeled=num_labeled, labeled_order=order, split_seed=split_seed, val_fraction=0.25)
        assert groups(d["labeled"]) == set(order[:count]) and len(groups(d["validation"])) == 5
        assert not groups(d["validation"]) & set(order[:count]) and groups(d["test"]) == {"t1", "t2"}


def test_publisher_splits_are_kept_and_checked():
    cases = [Case(f"/d/{g}.png", f"/m/{g}.png", g) for g in "abcdefghij"]
    d = make_datalist(cases, {"train": list("abcdefgh"), "test": list("ij")}, label_fraction=50)
    assert groups(d["test"]) == {"i", "j"} and len(groups(d["validation"])) == 1
    with pytest.raises(DatasetError, match="in both the train and test splits"):
        make_datalist(cases, {"train": list("abcdefghi"), "test": list("ij")})
    with pytest.raises(DatasetError, match=r"name \['z'\], which have no images"):
        make_datalist(cases, {"test": ["z"]})


# ---- download


def test_download_without_network_gives_manual_instructions(tmp_path, monkeypatch):
    from urllib.error import URLError

    def offline(*args, **kwargs):
        raise URLError("no route to host")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    for dataset in ("heart", "hmeps"):
        with pytest.raises(DatasetError, match=r"cannot download .* Offline or blocked: .*unpack it into"):
            download(dataset, tmp_path)
    with pytest.raises(DatasetError, match="cannot be downloaded automatically .* registration"):
        download("glas", tmp_path)


def test_fetch_resumes_a_partial_download_and_verifies_md5(tmp_path):
    import hashlib
    import http.server
    import threading

    payload = bytes(range(256)) * 400
    served = []

    class RangeHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            start = int(self.headers.get("Range", "bytes=0-")[6:].rstrip("-"))
            served.append(start)
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(payload) - start))
            self.end_headers()
            self.wfile.write(payload[start:])

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), RangeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/archive.zip"
    target = tmp_path / "archive.zip"
    (tmp_path / "archive.zip.part").write_bytes(payload[:30000])  # an interrupted earlier run
    md5 = hashlib.md5(payload).hexdigest()
    try:
        fetch_verified(url, str(target), md5)
        assert served == [30000] and target.read_bytes() == payload
        fetch_verified(url, str(target), md5)  # verified and reused: no second request
        assert served == [30000]
        with pytest.raises(DatasetError, match="does not match its md5"):
            fetch_verified(url, str(tmp_path / "other.zip"), "0" * 32)
        assert not (tmp_path / "other.zip").exists()
    finally:
        server.shutdown()


def test_training_from_a_written_datalist(tmp_path):
    layouts.write_ph2(tmp_path / "PH2")
    written = prepare("ph2", tmp_path / "PH2", tmp_path / "out", label_fraction=20, seed=5)
    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, name) for name in
                        ("train.yaml", "datasets/ph2.yaml", "datasets/datalist.yaml")])
    parser["datalist_file"] = str(tmp_path / "out" / "datalist.json")
    parser["label_fraction"] = 100  # ignored: the lists are taken as written
    assert parser.get_parsed_content("datalist") == written
    assert parser.get_parsed_content("synthetic") is False   # the full schedule, not the embedded default's


def test_preparing_config_id_writes_the_datalist_only(tmp_path, capsys):
    layouts.write_glas(tmp_path / "GlaS")
    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, "train.yaml"), os.path.join(CONFIGS, "datasets", "glas.yaml")])
    parser["dataset_dir"], parser["output_dir"] = str(tmp_path / "GlaS"), str(tmp_path / "eval")
    parser["ckpt_dir"] = str(tmp_path / "models")
    parser.get_parsed_content("preparing")
    assert "'test': 5" in capsys.readouterr().out
    assert (tmp_path / "eval" / "prepared_data" / "datalist.json").is_file() and not (tmp_path / "models").exists()
