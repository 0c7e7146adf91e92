"""Left atrium in 3D: sliding-window inference seconds and peak memory per volume, and training seconds per
iteration, for the paper's setting (datasets/volumes.yaml + datasets/la.yaml: 96 x 96 x 80 patches at 0.625 mm, channels 16-128,
R = 5) and the CPU profile (profiles/cpu_3d.yaml), on the real volumes.

Each setting runs in its own process, so that its peak memory is its own (resident set on CPU, allocated
tensors on GPU). A memory cap (``--memory-limit-gb``, CPU only) turns an allocation beyond it into a
reported failure instead of exhausting the machine.

    python benchmarks/la_cost.py --dataset-dir ../shared/data/LA
    python benchmarks/la_cost.py --settings cpu_profile --iterations 5
    python benchmarks/la_cost.py --settings paper --iterations 0 --set amp true   # inference only, bfloat16
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CONFIGS = os.path.join(ROOT, "bundle", "configs")
SETTINGS = {"paper": ["datasets/volumes.yaml", "datasets/la.yaml"],
            "cpu_profile": ["datasets/volumes.yaml", "datasets/la.yaml", "profiles/cpu_3d.yaml"]}


def peak_memory_gb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def measure(setting: str, args: argparse.Namespace, results) -> None:
    """Runs in a child process: inference over ``args.volumes`` test volumes, then training iterations."""
    sys.path.insert(0, os.path.join(ROOT, "bundle"))
    import torch
    from monai.bundle import ConfigParser

    from timing import seconds_per_iteration

    torch.set_num_threads(args.threads)
    if args.memory_limit_gb and not torch.cuda.is_available():
        limit = int(args.memory_limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    row: dict = {"setting": setting}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            config = ConfigParser()
            config.read_config([os.path.join(CONFIGS, name) for name in ["train.yaml", *SETTINGS[setting]]])
            for key, value in {
                "dataset_dir": args.dataset_dir, "num_labeled": 4, "output_dir": scratch, "ckpt_dir": scratch,
                "epoch_length": 1, "max_epochs": 1, "pretrain_epochs": 1,
                "pretrain#handlers": [], "train#handlers": [],
                **{key: yaml.safe_load(value) for key, value in args.set},
            }.items():
                config[key] = value
            device = config.get_parsed_content("device")
            row.update(patch=config.get_parsed_content("patch_size"), rounds=config.get_parsed_content("rounds"))
            network, inferer = config.get_parsed_content("network"), config.get_parsed_content("inferer")
            volumes = config.get_parsed_content("test#dataset")
            seconds = []
            network.eval()
            with torch.no_grad():
                for i in range(min(args.volumes, len(volumes))):
                    image = volumes[i]["image"][None].to(device)
                    start = time.perf_counter()
                    inferer(image, network)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    seconds.append(time.perf_counter() - start)
                    row["volume"] = tuple(image.shape[2:])
            row.update(inference_s=statistics.mean(seconds), inference_peak_gb=peak_memory_gb(device))
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            if args.iterations:
                for stage in ("pretrain", "train"):
                    trainer = config.get_parsed_content(f"{stage}#trainer")
                    trainer.run()  # warm-up: one iteration
                    row[f"{stage}_s"] = seconds_per_iteration(trainer, args.iterations)
                row["training_peak_gb"] = peak_memory_gb(device)
            row["device"] = str(device)
    except (MemoryError, RuntimeError) as error:
        row["failed"] = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
    results.put(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset-dir", default=os.path.join(ROOT, "..", "shared", "data", "LA"))
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--volumes", type=int, default=2, help="test volumes to infer")
    parser.add_argument("--iterations", type=int, default=3, help="timed training iterations per stage (0: none)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--memory-limit-gb", type=float, default=18.0)
    parser.add_argument("--set", nargs=2, action="append", default=[], metavar=("ID", "VALUE"),
                        help="override a config id (the value is read as YAML)")
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    print("| setting | patch | R | volume (voxels) | inference s / volume | inference peak GB "
          "| stage 1 s / iteration | co-training s / iteration | training peak GB | device |")
    print("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for setting in args.settings:
        results = context.Queue()
        child = context.Process(target=measure, args=(setting, args, results))
        child.start()
        child.join()
        row = results.get() if not results.empty() else {"setting": setting, "failed": f"exit code {child.exitcode}"}

        def cell(key, form="{:.2f}"):
            return form.format(row[key]) if key in row else "-"

        print(f"| {setting} | {cell('patch', '{}')} | {cell('rounds', '{}')} | {cell('volume', '{}')} "
              f"| {cell('inference_s')} | {cell('inference_peak_gb')} | {cell('pretrain_s')} | {cell('train_s')} "
              f"| {cell('training_peak_gb')} | {cell('device', '{}')} |")
        if "failed" in row:
            print(f"  {setting}: {row['failed']}")


if __name__ == "__main__":
    main()
