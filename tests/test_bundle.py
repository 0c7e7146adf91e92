"""The bundle as users run it: ``python -m monai.bundle run ...`` in a subprocess, on tiny synthetic data."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from PIL import Image

from helpers import HANG_TIMEOUT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "bundle", "configs")
TINY = [
    "--synthetic_dataset#num_train", "24", "--synthetic_dataset#num_val", "4", "--synthetic_dataset#num_test", "4",
    "--synthetic_dataset#size", "32", "--spatial_size", "[32,32]", "--batch_size", "4", "--labeled_batch_size", "2",
    "--epoch_length", "2", "--pretrain_epochs", "1", "--max_epochs", "2", "--val_interval", "1", "--rounds", "1",
]


def run_bundle(tmp_path, configs, *args, run_id="training", fails=False):
    """Run a bundle workflow with its outputs in ``tmp_path`` (inference, run id "run", has no ckpt_dir); with
    ``fails``, the run must end in an error."""
    files = [os.path.join(CONFIGS, c) for c in configs]
    folders = ["--output_dir", str(tmp_path / "eval")]
    if run_id != "run":
        folders += ["--ckpt_dir", str(tmp_path / "models")]
    command = [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", str(files), *folders, *args]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert (result.returncode != 0) == fails, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def network_from_config():
    parser = ConfigParser()
    parser.read_config(os.path.join(CONFIGS, "train.yaml"))
    return parser.get_parsed_content("network_def")


def read_report(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("bundle")
    log = run_bundle(tmp_path, ["train.yaml"], *TINY)
    return tmp_path, log


def test_training_writes_model_report_figures_and_logs(trained):
    tmp_path, log = trained
    models, evaluation = tmp_path / "models", tmp_path / "eval"
    assert "outputs: model" in log and str(models / "model.pt") in log
    state = torch.load(models / "model.pt", weights_only=True)
    assert "model" not in state  # a plain state dict, as MONAI Label and CheckpointLoader expect
    network_from_config().load_state_dict(state)  # strict: every key matches the network definition
    assert set(torch.load(models / "teacher.pt", weights_only=True)) == set(state)
    report = read_report(models / "test_metrics.json")
    assert report["num_images"] == 4
    for metric in ("dice", "jaccard", "pooled_dice", "pooled_jaccard"):
        assert set(report[metric]["per_class"]) == {"class_1", "class_2"}
        assert 0.0 <= report[metric]["mean"] <= 1.0
    assert report["pooled_dice"]["count"] == 1   # one score per class over all test images
    figures = sorted(os.listdir(evaluation / "figures"))
    expected = {"pretrain_teacher_epoch_0001.png", "train_pseudo_labels_epoch_0002.png", "test_cases.png"}
    assert expected <= set(figures)
    for stage in ("pretrain", "train"):
        assert any(name.startswith("events.out.tfevents") for name in os.listdir(evaluation / "tensorboard" / stage))
    assert "val_mean_dice" in log and "val_mean_iou" in log


def test_the_test_is_saved_per_case_and_printed_as_a_table(trained):
    tmp_path, log = trained
    report = read_report(tmp_path / "models" / "test_metrics.json")
    table = log[log.index("test metrics, 4 cases:"):].splitlines()
    assert table[1].split() == ["dice", "jaccard", "pooled_dice", "pooled_jaccard"] and [row.split()[0] for row in table[2:5]] == ["class_1", "class_2", "mean"]
    assert float(table[4].split()[1]) == pytest.approx(report["dice"]["mean"], abs=1e-4)
    cases = tmp_path / "eval" / "test_cases"
    for metric in ("test_dice", "test_jaccard"):
        rows = (cases / f"{metric}_raw.csv").read_text().splitlines()
        assert rows[0] == "filename,class0,class1,mean" and len(rows) == 5  # a row per test image
        summary = (cases / f"{metric}_summary.csv").read_text().splitlines()
        assert summary[0].startswith("class,mean,median") and summary[-1].startswith("mean,")


def test_the_progress_figure_draws_the_loss_terms_lambda_and_validation_by_epoch(trained):
    tmp_path, _ = trained
    figures = tmp_path / "eval" / "figures"
    curves = json.loads((figures / "progress.json").read_text())
    assert {"loss/total", "loss/supervised", "loss/cps", "loss/align", "lambda", "val_mean_dice"} <= set(curves)
    assert all(set(curves[name]) == {"1", "2"} for name in ("loss/total", "lambda", "val_mean_dice"))
    assert curves["lambda"]["1"] < curves["lambda"]["2"]
    assert "loss/cycle" in json.loads((figures / "pretrain_progress.json").read_text())
    for name in ("progress.png", "pretrain_progress.png"):
        assert Image.open(figures / name).size[1] > 200


def test_the_progress_bar_draws_each_step_once(trained):
    _, log = trained
    draws = log.replace("\r", "\n").splitlines()
    # the first of 2 steps, in stage 1's epoch and in co-training's 2 epochs: once each
    assert sum("[1/2]  50%" in line for line in draws) == 3


def test_tensorboard_has_every_loss_term_lambda_lr_and_dice(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tmp_path, _ = trained
    events = EventAccumulator(str(tmp_path / "eval" / "tensorboard" / "train"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {"loss/total", "loss/supervised", "loss/cps", "loss/align", "loss/reconstruction", "lambda",
                "lr/student", "lr/teacher", "val_mean_dice", "val_mean_iou"}
    assert expected <= tags
    assert events.Tags()["images"]


def test_resume_skips_finished_stages_and_keeps_the_model(trained):
    tmp_path, _ = trained
    model = (tmp_path / "models" / "model.pt").read_bytes()
    log = run_bundle(tmp_path, ["train.yaml"], *TINY, "--resume", "true")
    assert log.count("Restored all variables") == 3  # stage-1 state, stage-2 state, best model for the test
    assert "Got new best metric of val_mean_dice" not in log
    assert (tmp_path / "models" / "model.pt").read_bytes() == model


def test_a_resume_with_other_settings_is_refused_naming_them_and_the_split_is_kept(trained):
    tmp_path, _ = trained
    recorded = json.loads((tmp_path / "models" / "run_settings.json").read_text())
    assert recorded["label_fraction"] == 10 and recorded["seed"] == 0 and recorded["batch_size"] == 4
    datalist = (tmp_path / "eval" / "prepared_data" / "datalist.json").read_bytes()
    model = (tmp_path / "models" / "model.pt").read_bytes()
    log = run_bundle(tmp_path, ["train.yaml"], *TINY, "--resume", "true", "--label_fraction", "100", "--seed", "1",
                     fails=True)
    assert "it was started with other settings" in log.splitlines()[-1]
    assert "label_fraction 10 (now 100); seed 0 (now 1)" in log.splitlines()[-1]
    assert (tmp_path / "eval" / "prepared_data" / "datalist.json").read_bytes() == datalist
    assert (tmp_path / "models" / "model.pt").read_bytes() == model
    assert json.loads((tmp_path / "models" / "run_settings.json").read_text()) == recorded


@pytest.mark.slow
def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    run_bundle(tmp_path, ["train.yaml"], *TINY[:-6], "--max_epochs", "1", "--val_interval", "1", "--rounds", "1")
    log = run_bundle(tmp_path, ["train.yaml"], *TINY, "--resume", "true")
    assert "CoTrainer - INFO - Epoch[1] Complete" not in log
    assert "CoTrainer - INFO - Epoch[2] Complete" in log
    curves = json.loads((tmp_path / "eval" / "figures" / "progress.json").read_text())
    assert set(curves["loss/total"]) == set(curves["val_mean_dice"]) == {"1", "2"}  # the first run's epoch too


@pytest.mark.slow
def test_a_given_teacher_replaces_stage_1(trained, tmp_path):
    teacher = trained[0] / "models" / "teacher.pt"
    log = run_bundle(tmp_path, ["train.yaml"], *TINY, "--teacher_checkpoint", str(teacher))
    assert f"TeacherPretrainer skipped: its network is loaded from {teacher}" in log
    assert "TeacherPretrainer - INFO - Epoch[1] Complete" not in log
    models = tmp_path / "models"
    assert not (models / "pretrain_state.pt").exists() and not (models / "teacher.pt").exists()
    assert (models / "cotrained_teacher.pt").is_file() and (models / "model.pt").is_file()


@pytest.mark.slow
def test_evaluate_and_inference_configs(trained, tmp_path):
    trained_path, _ = trained
    report_path = trained_path / "models" / "test_metrics.json"
    before = read_report(report_path)
    report_path.unlink()
    run_bundle(trained_path, ["train.yaml", "evaluate.yaml"], *TINY, run_id="evaluating")
    assert read_report(report_path) == before

    images = trained_path / "eval" / "synthetic_data" / "images"
    command = [
        sys.executable, "-m", "monai.bundle", "run", "--config_file", os.path.join(CONFIGS, "inference.yaml"),
        "--input_path", str(images), "--output_dir", str(tmp_path / "masks"),
        "--save_uncertainty", "true", "--model_path", str(trained_path / "models" / "model.pt"),
    ]
    recorded = read_report(trained_path / "models" / "model_settings.json")   # served at its training size
    assert recorded["spatial_size"] == [32, 32] and recorded["network"]["channels"] == [16, 32, 64, 128]
    result = subprocess.run([*command, "--spatial_size", "[64,64]"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=HANG_TIMEOUT)
    assert result.returncode != 0 and "spatial_size [32, 32] (here [64, 64])" in result.stderr.splitlines()[-1]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    written = sorted(os.listdir(tmp_path / "masks"))
    assert len(written) == 2 * len(os.listdir(images))
    mask = np.array(Image.open(tmp_path / "masks" / "case0000_seg.png"))
    assert mask.shape == np.array(Image.open(images / "case0000.png")).shape
    assert set(np.unique(mask)) <= {0, 1, 2}

    command[command.index(str(tmp_path / "masks"))] = str(tmp_path / "valued")  # each class saved as a value of its own
    result = subprocess.run([*command, "--mask_values", "[50,128,255]"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=HANG_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in (n for n in written if n.endswith("_seg.png")):
        classes = np.array(Image.open(tmp_path / "masks" / name))
        valued = np.array(Image.open(tmp_path / "valued" / name))
        np.testing.assert_array_equal(valued, np.array([50, 128, 255], np.uint8)[classes])

    own = tmp_path / "own"   # masks written into the input folder: a second run does not segment them again
    own.mkdir()
    for name in ("case0000.png", "case0001.png"):
        (own / name).write_bytes((images / name).read_bytes())
    command[command.index(str(tmp_path / "valued"))] = command[command.index(str(images))] = str(own)
    for _ in range(2):
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_TIMEOUT)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    expected = [f"case000{i}{end}.png" for i in (0, 1) for end in ("", "_seg", "_uncertainty")]
    assert sorted(os.listdir(own)) == sorted(expected)
    log = result.stdout + result.stderr
    assert "4 file(s) in" in log and "not segmented again" in log


def test_supervised_baseline_overlay(tmp_path):
    log = run_bundle(tmp_path, ["train.yaml", "baselines/supervised.yaml"], *TINY)
    assert "TeacherPretrainer" not in log and "CoTrainer" not in log
    assert not (tmp_path / "models" / "cotrained_teacher.pt").exists()
    assert read_report(tmp_path / "models" / "test_metrics.json")["num_images"] == 4
    curves = json.loads((tmp_path / "eval" / "figures" / "progress.json").read_text())
    assert {"loss/supervised", "val_mean_dice"} <= set(curves)


@pytest.mark.slow
def test_co_trained_student_beats_chance_clearly(tmp_path):
    # chance level: a random labelling scores a mean foreground Dice of about 0.1 on this data
    run_bundle(
        tmp_path, ["train.yaml"], "--pretrain_epochs", "2", "--max_epochs", "5", "--val_interval", "1",
        "--rounds", "1", "--synthetic_dataset#size", "32", "--spatial_size", "[32,32]",   # 32 x 32: 0.89
    )
    report = read_report(tmp_path / "models" / "test_metrics.json")
    assert report["dice"]["mean"] > 0.6, report


@pytest.mark.parametrize("overlays", [["datasets/acdc.yaml"], ["datasets/acdc.yaml", "profiles/cpu_2d.yaml"]])
def test_overlays_build_a_network_that_fits_their_image_size(overlays):
    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, c) for c in ["train.yaml", *overlays]])
    network = parser.get_parsed_content("network_def")
    size = parser.get_parsed_content("spatial_size")
    image = torch.zeros(1, parser.get_parsed_content("image_channels"), *size)
    noise = torch.zeros(1, parser.get_parsed_content("num_classes"), *size)
    assert network(image, noise, torch.zeros(1, dtype=torch.long)).shape == noise.shape


@pytest.mark.parametrize("variant, detached, images, noised, space, lr, shared_body", [
    ("paper", False, "all", "noise", "image", 1e-2, True),
    ("authors", True, "unlabeled", "noised", "noise", 1e-2, False),
])
def test_variant_overlays_set_the_choices_they_name(tmp_path, variant, detached, images, noised, space, lr, shared_body):
    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, c) for c in ["train.yaml", f"variants/{variant}.yaml"]])
    parser["output_dir"] = str(tmp_path)
    for key, value in zip(TINY[::2], TINY[1::2]):
        parser[key[2:]] = json.loads(value)
    cotrainer, pretrainer = parser.get_parsed_content("train#trainer"), parser.get_parsed_content("pretrain#trainer")
    assert (cotrainer.detach_rounds, cotrainer.unsupervised_images, cotrainer.independent_noise) == (detached, images, detached)
    assert (pretrainer.image_input, cotrainer.reconstruction.space) == (noised, space)
    assert cotrainer.optimizer.param_groups[0]["initial_lr"] == lr and cotrainer.network.shared_body == shared_body


def test_teacher_copy_paste_reaches_the_cotrainer_and_needs_copy_paste(tmp_path):
    parser = ConfigParser()
    parser.read_config(os.path.join(CONFIGS, "train.yaml"))
    parser["output_dir"] = str(tmp_path)
    for key, value in zip(TINY[::2], TINY[1::2]):
        parser[key[2:]] = json.loads(value)
    assert parser.get_parsed_content("train#trainer").teacher_copy_paste is False
    parser["teacher_copy_paste"] = True
    assert parser.get_parsed_content("train#trainer", lazy=False).teacher_copy_paste is True
    parser["copy_paste"] = False
    with pytest.raises(RuntimeError) as error:   # MONAI wraps the error of a component
        parser.get_parsed_content("train#trainer", lazy=False)
    assert "needs copy_paste" in str(error.value.__cause__)


def test_authors_variant_counts_epochs_as_its_code_does(tmp_path):
    parser = ConfigParser()
    parser.read_config([os.path.join(CONFIGS, c) for c in ["train.yaml", "variants/authors.yaml"]])
    parser["output_dir"] = str(tmp_path)
    for key, value in zip(TINY[::2], TINY[1::2]):
        if key not in ("--epoch_length", "--batch_size"):
            parser[key[2:]] = json.loads(value)
    parser["pretrain_epochs"], parser["max_epochs"], parser["label_fraction"] = 30, 40, 20
    labeled = len(parser.get_parsed_content("datalist")["labeled"])
    cotrainer, pretrainer = parser.get_parsed_content("train#trainer"), parser.get_parsed_content("pretrain#trainer")
    assert labeled == 5 and cotrainer.state.epoch_length == 3   # a pass over the labeled images in batches of 2
    assert cotrainer.data_loader.batch_size == 2                # the unlabeled batch cut to the labeled one
    assert pretrainer.state.epoch_length == len(pretrainer.data_loader) == 19 // 2   # stage 1: the unlabeled images
    assert pretrainer.optimizer.param_groups[0]["initial_lr"] == 1e-3
    stage1, stage2 = parser.get_parsed_content("pretrain#lr_scheduler"), parser.get_parsed_content("train#lr_scheduler")
    assert (stage1.warmup_epochs, stage1.step_size, stage2.warmup_epochs, stage2.step_size) == (3, 7, 4, 10)


def test_a_run_shorter_than_its_validation_interval_tests_its_own_model(tmp_path):
    (tmp_path / "models").mkdir()
    torch.save({}, tmp_path / "models" / "model.pt")
    (tmp_path / "models" / "model.run.json").write_text(json.dumps({"id": "an older run"}))
    short = [value if TINY[i - 1] != "--val_interval" else "5" for i, value in enumerate(TINY)]
    run_bundle(tmp_path, ["train.yaml", "baselines/supervised.yaml"], *short)
    network_from_config().load_state_dict(torch.load(tmp_path / "models" / "model.pt", weights_only=True))
    written_by = read_report(tmp_path / "models" / "model.run.json")
    report = read_report(tmp_path / "models" / "test_metrics.json")
    assert written_by["id"] != "an older run" and report["model"]["run"] == written_by


@pytest.mark.slow
@pytest.mark.parametrize("overlays", [["train.yaml"], ["train.yaml", "baselines/supervised.yaml"]])
def test_fully_supervised_training_takes_a_pass_over_the_training_images_per_epoch(tmp_path, overlays):
    at = TINY.index("--epoch_length")
    tiny = TINY[:at] + TINY[at + 2:]   # an epoch: one pass over the training images
    run_bundle(tmp_path, overlays, *tiny, "--label_fraction", "100")
    datalist = read_report(tmp_path / "eval" / "prepared_data" / "datalist.json")
    assert not datalist["unlabeled"] and len(datalist["labeled"]) == 24
    trainer = torch.load(tmp_path / "models" / "train_state.pt", weights_only=False)["trainer"]
    assert dict(trainer) == {"epoch_length": 24 // 4, "iteration": 2 * 24 // 4, "max_epochs": 2}
    assert read_report(tmp_path / "models" / "test_metrics.json")["num_images"] == 4


def test_a_misspelled_option_stops_the_run_before_anything_is_written(tmp_path):
    command = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file",
               os.path.join(CONFIGS, "train.yaml"), "--output_dir", str(tmp_path / "eval"), "--label_fracton", "50"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert result.returncode != 0 and "did you mean --label_fraction" in result.stderr
    assert not (tmp_path / "eval").exists()


class _AlwaysClassOne(torch.nn.Module):
    """A mask pathway that names class 1 everywhere, whatever the size of its input."""

    num_classes = 3

    def forward(self, image, noise, timesteps):
        zeros = image[:, :1] * 0  # keeps the image's metadata, as a network's output does
        return torch.cat([zeros, zeros + 1, zeros], dim=1)


def test_the_test_scores_each_prediction_at_its_images_own_size_against_the_mask_file(tmp_path):
    from monai.transforms import LoadImage

    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(20):  # two sizes, neither the training size
        rows, columns = (24, 40) if i % 2 else (37, 19)
        mask = rng.integers(0, 3, (rows, columns)).astype(np.uint8)
        Image.fromarray(mask * 100).save(tmp_path / "images" / f"case{i:02d}.png")
        Image.fromarray(mask).save(tmp_path / "masks" / f"case{i:02d}.png")
    parser = ConfigParser()
    parser.read_config(os.path.join(CONFIGS, "train.yaml"))
    for key, value in {"dataset_dir": str(tmp_path), "num_classes": 3, "spatial_size": [32, 32],
                       "output_dir": str(tmp_path / "eval"), "ckpt_dir": str(tmp_path / "models"),
                       "test#handlers": []}.items():
        parser[key] = value
    evaluator = parser.get_parsed_content("test#evaluator")
    evaluator.network = _AlwaysClassOne()
    evaluator.run()

    masks = [LoadImage(image_only=True)(item["label"]) for item in parser.get_parsed_content("test_data")]
    assert {tuple(m.shape) for m in masks} == {(40, 24), (19, 37)}
    expected = []
    for mask in masks:  # class 1 everywhere: Dice 2 n1 / (N + n1) for class 1, 0 for class 2
        n1, n = float((mask == 1).sum()), mask.numel()
        expected.append([2 * n1 / (n + n1), 0.0])
    np.testing.assert_allclose(evaluator.state.metric_details["test_dice"].cpu().numpy(), expected, rtol=1e-5)
