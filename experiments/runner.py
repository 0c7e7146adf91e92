"""Runs the grid one bundle run per process, each in its own folder, and records each run in ``run.json``.

A run's folder holds ``settings.yaml`` (the overlay with its dataset, fraction, seed and folders),
``log.txt``, ``models/`` (checkpoints, ``model.pt``, ``test_metrics.json``), ``eval/`` (figures,
TensorBoard) and ``run.json`` (status, command, wall time, test metrics, validation curve), written
atomically. Finished runs are skipped; an interrupted or failed run continues from its checkpoints
(``resume``), or starts again from nothing with ``fresh``.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections import deque
from importlib import metadata

import yaml

from scripts.atomic import atomic_json_dump, atomic_write
from scripts.compute import total_flops
from . import BUNDLE_ROOT
from .grid import Run

RUN_RECORD = "run.json"
ATTEMPT_MARK = "--- input summary of monai.bundle.scripts.run ---"   # what MONAI logs as a bundle run starts


def run_dir(root: str, run: Run) -> str:
    return os.path.join(root, *run.key.split("/"))


def read_record(root: str, run: Run) -> dict | None:
    path = os.path.join(run_dir(root, run), RUN_RECORD)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def status(root: str, run: Run) -> str:
    """``finished``, ``failed``, ``interrupted`` (started, never ended) or ``pending``."""
    record = read_record(root, run)
    if record is None:
        return "interrupted" if os.path.isdir(run_dir(root, run)) else "pending"
    return record["status"] if record["status"] in ("finished", "failed") else "interrupted"


def command(root: str, run: Run) -> list[str]:
    """The bundle command of a run: its overlays and then its own ``settings.yaml``."""
    configs = [*run.configs, os.path.join(run_dir(root, run), "settings.yaml")]
    workflow = "evaluating" if run.method.evaluate else "training"
    return [sys.executable, "-m", "monai.bundle", "run", workflow, "--config_file", json.dumps(configs)]


def settings(root: str, run: Run) -> dict:
    """The config ids a run sets: data, fraction, seed, its folders, resuming, and the preset's options."""
    folder = run_dir(root, run)
    values = {
        "dataset_dir": run.dataset_dir, "label_fraction": run.label_fraction, "seed": run.seed,
        "output_dir": os.path.join(folder, "eval"), "ckpt_dir": os.path.join(folder, "models"), "resume": True,
    }
    if run.method.evaluate:  # the model of the evaluated run, the report in this run's folder
        values["ckpt_dir"] = os.path.join(root, *run.source_key().split("/"), "models")
        values["test#report_path"] = os.path.join(folder, "models", "test_metrics.json")
        del values["resume"]
    return {**run.options, **values}


def machine() -> str:
    """What a run ran on: CPU model and cores, GPU, OS, Python, torch and MONAI versions."""
    import torch

    from scripts.precision import native_bfloat16_cpu

    cpu = platform.processor() or platform.machine()
    if os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    bfloat16 = "" if gpu != "no GPU" or native_bfloat16_cpu() else " (no bfloat16 instructions: amp runs in float32)"
    return (f"{cpu}{bfloat16}, {os.cpu_count()} cores, {gpu}; {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, torch {metadata.version('torch')}, MONAI {metadata.version('monai')}")


def validation_curve(folder: str) -> list[tuple[int, float]]:
    """``(epoch, val_mean_dice)`` from a run's TensorBoard logs (the last value where a resumed run
    logged an epoch twice); empty where nothing was validated."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir = os.path.join(folder, "eval", "tensorboard", "train")
    if not os.path.isdir(log_dir):
        return []
    values = {}
    for name in sorted(os.listdir(log_dir)):
        events = EventAccumulator(os.path.join(log_dir, name), size_guidance={"scalars": 0})
        events.Reload()
        if "val_mean_dice" in events.Tags()["scalars"]:
            values.update({e.step: e.value for e in events.Scalars("val_mean_dice")})
    return sorted(values.items())


def execute(root: str, run: Run, fresh: bool = False) -> dict:
    """Run one grid point to its end and return its record (``status`` finished or failed)."""
    folder = run_dir(root, run)
    if fresh and os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder, exist_ok=True)
    cmd = command(root, run)
    previous = None if fresh else read_record(root, run)
    seconds, timed = earlier_time(folder, previous)   # a resumed run adds up its attempts
    record = {
        "key": run.key, "dataset": run.dataset, "label_fraction": run.label_fraction, "method": run.method.name,
        "label": run.method.label, "seed": run.seed, "command": shlex.join(cmd), "status": "running",
        "seconds": seconds, "timed": timed, "attempt_started": time.time(), "machine": machine(),
    }
    source = run.source_key()
    if source is not None and not os.path.isfile(os.path.join(root, *source.split("/"), "models", "model.pt")):
        return _end(folder, record, "failed", 0.0, error=f"it evaluates the model of {source}, which has not finished.")
    atomic_write(os.path.join(folder, "settings.yaml"), lambda tmp: _dump_yaml(settings(root, run), tmp))
    atomic_json_dump(record, os.path.join(folder, RUN_RECORD))
    start = time.time()
    with open(os.path.join(folder, "log.txt"), "a") as log:
        returncode = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=BUNDLE_ROOT)
    seconds = time.time() - start
    report = os.path.join(folder, "models", "test_metrics.json")
    if returncode != 0 or not os.path.isfile(report):
        with open(os.path.join(folder, "log.txt")) as f:
            tail = "".join(deque(f, maxlen=5)).strip()
        return _end(folder, record, "failed", seconds, error=f"exit code {returncode}; log.txt ends with:\n{tail}")
    with open(report) as f:
        record["test"] = json.load(f)
    flops = total_flops(os.path.join(folder, "models", "training_flops.json"))
    if flops is not None:
        record["training_flops"] = flops
    curve = validation_curve(folder)
    if curve:
        best = max(curve, key=lambda point: point[1])
        record["validation"] = {"val_mean_dice": [list(p) for p in curve], "best": {"epoch": best[0], "val_mean_dice": best[1]}}
    return _end(folder, record, "finished", seconds)


def is_timed(folder: str, record: dict) -> bool:
    """Whether a record's ``seconds`` count every attempt of its run: as the record says, or where it does not
    (restored records, records of earlier versions), whether the run's log holds a single attempt."""
    if "timed" in record:
        return record["timed"]
    log = os.path.join(folder, "log.txt")
    if record.get("restored_from") or not os.path.isfile(log):
        return False
    with open(log, errors="replace") as f:
        return sum(ATTEMPT_MARK in line for line in f) == 1


def earlier_time(folder: str, previous: dict | None) -> tuple[float, bool]:
    """The wall time of a run's earlier attempts, and whether all of it is counted (``is_timed``): an attempt
    that was killed (its record still says running) lasted until its log was last written."""
    if previous is None:
        return 0.0, True
    seconds, timed = previous.get("seconds", 0.0), is_timed(folder, previous)
    log = os.path.join(folder, "log.txt")
    if previous["status"] == "running":
        if "attempt_started" in previous and os.path.isfile(log):
            seconds += max(0.0, os.path.getmtime(log) - previous["attempt_started"])
        else:
            timed = False
    return seconds, timed


def _end(folder: str, record: dict, outcome: str, seconds: float, error: str | None = None) -> dict:
    record.update(status=outcome, seconds=round(record["seconds"] + seconds, 1))
    record.pop("attempt_started", None)
    if error is not None:
        record["error"] = error
    atomic_json_dump(record, os.path.join(folder, RUN_RECORD))
    return record


def _dump_yaml(values: dict, path: str) -> None:
    with open(path, "w") as f:
        yaml.safe_dump(values, f, sort_keys=False)


def restore(root: str, runs: list[Run], runs_csv: str) -> list[dict]:
    """Records of finished runs from a report's ``runs.csv`` (the runs' folders were not kept), for the runs
    of the grid that have no record yet: test means, best validation score, wall time and whether it is the
    whole run's, marked with the file they came from. Returns the records written."""
    with open(runs_csv, newline="") as f:
        rows = {row["run"]: row for row in csv.DictReader(f)}
    restored = []
    for run in runs:
        row = rows.get(run.key)
        if row is None or read_record(root, run) is not None:
            continue
        test = {name[len("test_"):]: {"mean": float(value)} for name, value in row.items()
                if name.startswith("test_") and value != ""}
        record = {
            "key": run.key, "dataset": run.dataset, "label_fraction": run.label_fraction, "method": run.method.name,
            "label": run.method.label, "seed": run.seed, "status": "finished", "seconds": float(row["seconds"]),
            "test": test, "restored_from": os.path.abspath(runs_csv),
        }
        if row.get("timed"):   # whether its seconds count every attempt (tables without the column: unknown)
            record["timed"] = row["timed"] == "True"
        if row.get("training_flops"):
            record["training_flops"] = float(row["training_flops"])
        if row.get("best_val_dice"):
            record["validation"] = {"best": {"epoch": int(row["best_val_epoch"]), "val_mean_dice": float(row["best_val_dice"])}}
        os.makedirs(run_dir(root, run), exist_ok=True)
        atomic_json_dump(record, os.path.join(run_dir(root, run), RUN_RECORD))
        restored.append(record)
    return restored


def run_all(root: str, runs: list[Run], fresh: bool = False, echo=print) -> list[dict]:
    """Run every unfinished run in order; returns the records of those that ran."""
    todo = [run for run in runs if status(root, run) != "finished"]
    echo(f"{len(runs) - len(todo)} of {len(runs)} runs already finished; {len(todo)} to run in {root}")
    records = []
    for number, run in enumerate(todo, 1):
        state = status(root, run)
        how = "from nothing" if fresh or state == "pending" else f"resuming ({state})"
        echo(f"[{number}/{len(todo)}] {run.key} {how}")
        record = execute(root, run, fresh=fresh)
        records.append(record)
        if record["status"] == "finished":
            echo(f"    finished in {record['seconds']:.0f} s: test Dice {record['test']['dice']['mean']:.3f}")
        else:
            echo(f"    FAILED after {record['seconds']:.0f} s: {record['error']}")
    return records
