"""``--tracking bundle/configs/mlflow.yaml`` (MONAI's bundle option with the bundle's settings file): one MLflow
run, in a local SQLite store, holds stage 1, every co-training loss term and lambda, the validation metrics and
the test report; MONAI's built-in ``--tracking mlflow`` is refused, naming the file."""

import json
import os
import subprocess
import sys

import mlflow  # an optional dependency of the bundle ('.[tracking]'), part of the test extras
import pytest

from helpers import HANG_TIMEOUT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "bundle", "configs")


def bundle_run(tmp_path, run_id, config_files, *options, tracking=os.path.join(CONFIGS, "mlflow.yaml")):
    return subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", str(config_files),
         "--bundle_root", str(tmp_path / "bundle"), "--tracking", tracking, *options],
        cwd=tmp_path, capture_output=True, text=True, timeout=HANG_TIMEOUT,
    )


def bundle_runs(tmp_path, run_id, config_files, *options):
    result = bundle_run(tmp_path, run_id, config_files, *options)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


def history(client, run, key):
    return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]


@pytest.mark.slow
def test_one_run_holds_stage_1_every_loss_term_validation_and_the_test(tmp_path):
    from monai.utils import path_to_sqlite_uri

    bundle_runs(tmp_path, "training", os.path.join(CONFIGS, "train.yaml"), "--pretrain_epochs", "1",
               "--max_epochs", "2", "--epoch_length", "2", "--val_interval", "1", "--rounds", "1")
    client = mlflow.MlflowClient(path_to_sqlite_uri(str(tmp_path / "bundle" / "eval" / "mlruns.db")))
    experiment = client.get_experiment_by_name("diffseg")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run = runs[0]
    assert len(history(client, run, "pretrain_loss/cycle")) == 2  # stage 1: 1 epoch of 2 iterations
    terms = {"loss/supervised", "loss/cps", "loss/align", "loss/reconstruction", "loss/total", "lambda"}
    assert terms <= set(run.data.metrics)
    assert [v for _, v in history(client, run, "lambda")] == [0.5, 0.5, 1.0, 1.0]  # linear ramp over 2 epochs
    assert [s for s, _ in history(client, run, "val_mean_dice")] == [1, 2]  # validated after each epoch
    with open(tmp_path / "bundle" / "models" / "test_metrics.json") as f:
        report = json.load(f)
    assert run.data.metrics["test_dice"] == pytest.approx(report["dice"]["mean"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"test_metrics.json", "test_dice_raw.csv"} <= artifacts and any(a.startswith("config_") for a in artifacts)
    assert run.data.params["max_epochs"] == "2" and run.data.params["rounds"] == "1"

    # evaluating the written model: a run of its own with the test metrics
    bundle_runs(tmp_path, "evaluating", [os.path.join(CONFIGS, "train.yaml"), os.path.join(CONFIGS, "evaluate.yaml")])
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    assert len(runs) == 2 and runs[0].data.metrics["test_dice"] == pytest.approx(report["dice"]["mean"])


def test_monai_default_tracking_is_refused_naming_the_settings_file(tmp_path):
    result = bundle_run(tmp_path, "training", os.path.join(CONFIGS, "train.yaml"), tracking="mlflow")
    assert result.returncode != 0
    assert "--tracking mlflow: give the bundle's tracking settings file" in result.stderr
    assert os.path.join("configs", "mlflow.yaml") in result.stderr
    assert not (tmp_path / "bundle" / "models").exists()   # refused before any work
