"""3D: the sliding window over whole volumes, and a tiny left-atrium volume set through the whole bundle."""

import functools
import glob
import json
import os
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.metrics import (HausdorffDistanceMetric, SurfaceDistanceMetric, compute_average_surface_distance,
                           compute_hausdorff_distance)

import publisher_layouts as layouts
from helpers import VOLUME_LA
from scripts.handlers import SegmentationReport
from scripts.metrics import PhysicalSurfaceDistance
from test_bundle import CONFIGS, run_bundle


SIGMOID_1 = torch.tensor(1.0).sigmoid()


class WindowRecorder(torch.nn.Module):
    """A stand-in network that records every window it is given; its logits (0, 1) give class 1 the
    probability sigmoid(1) everywhere."""

    num_classes = 2

    def __init__(self):
        super().__init__()
        self.windows = []

    def forward(self, image, noisy_mask, timesteps):
        self.windows.extend(image[:, 0].clone())
        return torch.stack([torch.zeros_like(image[:, 0]), torch.ones_like(image[:, 0])], dim=1)


def la_inferer(tmp_path, **settings):
    parser = ConfigParser()
    parser.read_config([*[os.path.join(CONFIGS, name) for name in ["train.yaml", *VOLUME_LA]]])
    parser["output_dir"] = str(tmp_path)
    for key, value in settings.items():
        parser[key] = value
    return parser.get_parsed_content("inferer")


def test_la_inferer_is_a_half_overlapping_window_of_the_patch_size(tmp_path):
    window = la_inferer(tmp_path).sliding_window
    assert tuple(window.roi_size) == (96, 96, 80) and window.overlap == 0.5 and window.mode == "gaussian"
    assert la_inferer(tmp_path, sliding_window_mode="constant").sliding_window.mode == "constant"


def test_sliding_window_covers_every_voxel_with_half_overlap(tmp_path):
    inferer = la_inferer(tmp_path, patch_size=[16, 16, 16])
    network = WindowRecorder()
    size = 40
    grid = torch.stack(torch.meshgrid(*[torch.arange(size)] * 3, indexing="ij"))  # each voxel holds its index
    volume = (grid[0] * size * size + grid[1] * size + grid[2]).float()[None, None]
    out = inferer(volume, network)
    assert out.shape == (1, 2, size, size, size) and torch.allclose(out[:, 1], SIGMOID_1)
    starts = [np.unravel_index(int(w.flatten()[0]), (size,) * 3) for w in network.windows]
    assert sorted({s[0] for s in starts}) == [0, 8, 16, 24]  # stride 8 = half the 16-voxel window (0.25: 0, 12, 24)
    assert len(starts) == 4 ** 3
    coverage = torch.zeros((size,) * 3)
    for x, y, z in starts:
        coverage[x:x + 16, y:y + 16, z:z + 16] += 1
    assert coverage.min() >= 1 and coverage[8:32, 8:32, 8:32].eq(8).all()  # inside, every voxel is seen 2 x 2 x 2 times


def test_a_volume_smaller_than_the_patch_is_padded_and_cropped_back(tmp_path):
    inferer = la_inferer(tmp_path, patch_size=[16, 16, 16])
    network = WindowRecorder()
    out = inferer(torch.rand(1, 1, 10, 12, 6), network)
    assert [tuple(w.shape) for w in network.windows] == [(16, 16, 16)]
    assert out.shape == (1, 2, 10, 12, 6) and torch.allclose(out[:, 1], SIGMOID_1)


def test_surface_distances_are_in_the_voxel_spacing_of_each_image():
    target = torch.zeros(1, 2, 16, 16, 16)
    target[:, 1, 4:10, 4:10, 4:10] = 1
    prediction = torch.roll(target, shifts=3, dims=2)
    target[:, 0], prediction[:, 0] = 1 - target[:, 1], 1 - prediction[:, 1]
    spacing = (0.5, 0.5, 2.0)  # mm
    affine = torch.diag(torch.tensor([*spacing, 1.0]))
    hd95 = functools.partial(compute_hausdorff_distance, percentile=95)
    asd = functools.partial(compute_average_surface_distance, symmetric=True)
    assert hd95(prediction, target).item() == pytest.approx(3.0)  # voxels
    assert hd95(prediction, target, spacing=spacing).item() == pytest.approx(1.5)  # mm
    for metric_fn, reference in ((HausdorffDistanceMetric(percentile=95), hd95),
                                 (SurfaceDistanceMetric(symmetric=True), asd)):
        handler = PhysicalSurfaceDistance(metric_fn, save_details=False)
        handler.update(([MetaTensor(prediction[0], affine=affine)], [target[0]]))
        in_mm = reference(prediction, target, spacing=spacing).item()
        assert handler.compute() == pytest.approx(in_mm, rel=1e-5)
        assert in_mm != pytest.approx(reference(prediction, target).item(), rel=0.01)


def test_report_leaves_undefined_values_out_of_the_means_and_counts_them(tmp_path):
    engine = SimpleNamespace(state=SimpleNamespace(metric_details={
        "hd": torch.tensor([[2.0, float("inf")], [4.0, 1.0], [float("nan"), 3.0]]),  # 3 volumes x 2 classes
    }))
    SegmentationReport(str(tmp_path / "report.json"), {"hd95_mm": "hd"}, class_names=["a", "b"])(engine)
    with open(tmp_path / "report.json") as f:
        report = json.load(f)["hd95_mm"]
    assert report["per_class"] == {"a": 3.0, "b": 2.0} and report["num_undefined"] == 2
    assert report["mean"] == pytest.approx((2.0 + 2.5 + 3.0) / 3)  # per volume over its defined classes


TINY_3D_NETWORK = [
    "--patch_size", "[16,16,16]", "--network_def#channels", "[8,16]", "--network_def#attention_levels",
    "[False,False]", "--network_def#num_head_channels", "16",
]


@pytest.fixture(scope="module")
def left_atrium_run(tmp_path_factory):
    """The CPU profile on tiny h5 volumes (0.625 mm), trained at 1.25 mm as the profile does."""
    tmp_path = tmp_path_factory.mktemp("la")
    layouts.write_la_h5(tmp_path / "LA", num_train=6, num_test=2, shape=(40, 36, 24))
    log = run_bundle(
        tmp_path, ["train.yaml", *VOLUME_LA, "profiles/cpu_3d.yaml"],
        "--dataset_dir", str(tmp_path / "LA"), "--num_labeled", "2", *TINY_3D_NETWORK, "--pretrain_epochs", "1",
        "--max_epochs", "1", "--epoch_length", "2", "--val_interval", "1", "--inference_draws", "2", "--save_uncertainty", "true",
    )
    return tmp_path, log


def test_volumes_are_trained_inferred_saved_as_nifti_and_measured_in_mm(left_atrium_run):
    tmp_path, log = left_atrium_run
    with open(tmp_path / "models" / "test_metrics.json") as f:
        report = json.load(f)
    assert report["num_images"] == 2
    assert set(report) == {"dice", "jaccard", "hd95_mm", "asd_mm", "num_images", "model"}
    with open(tmp_path / "eval" / "prepared_data" / "datalist.json") as f:
        test_items = json.load(f)["test"]
    hd95, asd = [], []
    for item in test_items:
        source = nib.load(item["image"])
        name = os.path.basename(item["image"]).replace(".nii.gz", "_seg.nii.gz")
        saved = nib.load(tmp_path / "eval" / "predictions" / name)
        # the network saw 1.25 mm; the mask is back on the input's own 0.625 mm grid
        assert saved.shape == source.shape and np.allclose(saved.affine, source.affine, atol=1e-4)
        uncertainty = nib.load(tmp_path / "eval" / "predictions" / name.replace("_seg", "_uncertainty"))
        assert uncertainty.shape == source.shape and np.allclose(uncertainty.affine, source.affine, atol=1e-4)
        assert 0 <= uncertainty.get_fdata().min() and uncertainty.get_fdata().max() <= 1 + 1e-6
        prediction = np.asarray(saved.dataobj)
        assert prediction.dtype == np.uint8 and set(np.unique(prediction)) <= {0, 1}
        target = np.asarray(nib.load(item["label"]).dataobj)
        p, t = (torch.as_tensor(a == 1)[None, None] for a in (prediction, target))
        hd95.append(compute_hausdorff_distance(p, t, percentile=95, spacing=0.625).item())
        asd.append(compute_average_surface_distance(p, t, symmetric=True, spacing=0.625).item())
    finite = [(h, a) for h, a in zip(hd95, asd) if np.isfinite(h)]
    assert report["hd95_mm"]["num_undefined"] == len(hd95) - len(finite)
    if finite:  # recomputed from the saved masks in mm, they match the report
        assert report["hd95_mm"]["mean"] == pytest.approx(np.mean([h for h, _ in finite]), rel=1e-4)
        assert report["asd_mm"]["mean"] == pytest.approx(np.mean([a for _, a in finite]), rel=1e-4)
    assert len(glob.glob(str(tmp_path / "eval" / "figures" / "*.png"))) > 0



def test_inference_config_takes_the_volume_overlay_and_matches_the_test_predictions(left_atrium_run):
    """inference.yaml + la.yaml + the profile segments a volume as the trained run's test did, saved as NIfTI
    on the input's own grid."""
    tmp_path, _ = left_atrium_run
    with open(tmp_path / "eval" / "prepared_data" / "datalist.json") as f:
        volume = json.load(f)["test"][0]["image"]
    inference = tmp_path / "inference"
    inference.mkdir()
    run_bundle(inference, ["inference.yaml", *VOLUME_LA, "profiles/cpu_3d.yaml"], "--input_path", volume,
               "--model_path", str(tmp_path / "models" / "model.pt"), *TINY_3D_NETWORK,
               "--inference_draws", "2", run_id="run")
    name = os.path.basename(volume).replace(".nii.gz", "_seg.nii.gz")
    saved, tested = nib.load(inference / "eval" / name), nib.load(tmp_path / "eval" / "predictions" / name)
    assert saved.shape == nib.load(volume).shape and np.allclose(saved.affine, nib.load(volume).affine, atol=1e-4)
    assert np.array_equal(np.asarray(saved.dataobj), np.asarray(tested.dataobj))
