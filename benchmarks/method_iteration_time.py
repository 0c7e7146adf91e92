"""Seconds per training iteration of every method as the bundle wires it, and the wall time that a whole
run of the chosen profile would take at that speed (iterations x seconds + validations).

Each method's trainer is built from train.yaml + the dataset overlay + its baseline overlay + the profile,
on the real data, with no handlers (no checkpoints or logs). The methods take turns, so that drifts of
the machine's speed hit them alike; medians of ``--repeats`` runs of ``--iterations`` iterations after a
warm-up.

    python benchmarks/method_iteration_time.py                                   # ACDC 5 %, cpu_2d profile
    python benchmarks/method_iteration_time.py --threads 1 --methods ours cps
    python benchmarks/method_iteration_time.py --methods ours --set amp true   # any config id, as on the command line
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch
import yaml
from monai.bundle import ConfigParser
from methods import method_overlays
from timing import seconds_per_iteration

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "bundle"))  # the bundle's scripts package
CONFIGS = os.path.join(ROOT, "bundle", "configs")
METHODS = {"supervised": "supervised", "EM": "em", "CPS": "cps", "UAMT": "uamt", "CCT": "cct", "URPC": "urpc", "BCP": "bcp",
           "ours": None}


def build(method: str, args: argparse.Namespace, output_dir: str) -> dict:
    """The method's trainers (stage 1 only for ours), its validator and the run length of the profile."""
    files = ["train.yaml", f"datasets/{args.dataset}.yaml"]
    files += method_overlays(METHODS[method])
    files += [f"profiles/{args.profile}.yaml"]
    config = ConfigParser()
    config.read_config([os.path.join(CONFIGS, name) for name in files])
    config["dataset_dir"], config["label_fraction"] = args.dataset_dir, args.label_fraction
    for key, value in args.set:
        config[key] = yaml.safe_load(value)
    length = {key: config.get_parsed_content(key) for key in ("max_epochs", "val_interval", "pretrain_epochs")}
    epoch_length = config.get_parsed_content("epoch_length")
    stages = {"co-training": "train"} if METHODS[method] else {"pretraining": "pretrain", "co-training": "train"}
    settings = {
        "output_dir": output_dir, "ckpt_dir": output_dir, "epoch_length": args.iterations, "max_epochs": 1,
        "pretrain_epochs": 1,
        **{f"{section}#handlers": [] for section in stages.values()},
    }
    for key, value in settings.items():
        config[key] = value
    trainers = {stage: config.get_parsed_content(f"{section}#trainer") for stage, section in stages.items()}
    if epoch_length is None:  # one pass over the unlabeled images
        epoch_length = len(trainers["co-training"].data_loader)
    iterations = {"co-training": length["max_epochs"] * epoch_length,
                  "pretraining": length["pretrain_epochs"] * epoch_length}
    return {
        "trainers": trainers,
        "iterations": {stage: iterations[stage] for stage in stages},
        "validations": length["max_epochs"] // length["val_interval"],
        "validator": config.get_parsed_content("validate#evaluator"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset-dir", default=os.path.join(ROOT, "..", "shared", "data", "ACDC"))
    parser.add_argument("--dataset", default="acdc", help="a dataset overlay in bundle/configs/datasets")
    parser.add_argument("--profile", default="cpu_2d", help="a profile overlay in bundle/configs/profiles")
    parser.add_argument("--label-fraction", type=float, default=5)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--iterations", type=int, default=5, help="iterations per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--budget-minutes", type=float, default=60)
    parser.add_argument("--set", nargs=2, action="append", default=[], metavar=("ID", "VALUE"),
                        help="override a config id (the value is read as YAML)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.dataset} at {args.label_fraction} %, profile {args.profile}, {args.threads} threads, "
          f"{args.iterations} iterations x {args.repeats} repeats"
          + "".join(f", {key} = {value}" for key, value in args.set))

    with tempfile.TemporaryDirectory() as scratch:
        built = {m: build(m, args, os.path.join(scratch, m)) for m in args.methods}
        for method in built.values():  # warm-up: caches, allocator, first-call costs
            for trainer in method["trainers"].values():
                trainer.run()
        samples = {m: {stage: [] for stage in b["trainers"]} for m, b in built.items()}
        for _ in range(args.repeats):
            for name, method in built.items():
                for stage, trainer in method["trainers"].items():
                    samples[name][stage].append(seconds_per_iteration(trainer, args.iterations))
        validation = {}
        for name, method in built.items():
            start = time.perf_counter()
            method["validator"].run()
            validation[name] = time.perf_counter() - start

    print("| method | s / co-training iteration | s / pretraining iteration | s / validation | iterations "
          f"| validations | projected run (min) | within {args.budget_minutes:g} min |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, method in built.items():
        seconds = {stage: statistics.median(values) for stage, values in samples[name].items()}
        total = sum(method["iterations"][stage] * s for stage, s in seconds.items())
        total += method["validations"] * validation[name]
        pretraining = f"{seconds['pretraining']:.3f}" if "pretraining" in seconds else "-"
        iterations = " + ".join(f"{n:,}" for n in method["iterations"].values())
        print(f"| {name} | {seconds['co-training']:.3f} | {pretraining} | {validation[name]:.1f} | {iterations} "
              f"| {method['validations']} | {total / 60:.1f} | {'yes' if total <= args.budget_minutes * 60 else 'no'} |")

if __name__ == "__main__":
    main()
