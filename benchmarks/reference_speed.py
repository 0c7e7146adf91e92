"""Ours against the authors' SuperDiffusion on the same work: s / iteration, images / s, peak memory, FLOPs.

Same input for both: 128 x 128 single-channel images, 4 classes, 8 labeled + 8 unlabeled per co-training
iteration, R = 5 rounds; 8 images per stage-1 iteration and per inference batch. Each network as it ships:
ours from ``bundle/configs/train.yaml``; theirs ``unet_ddpm`` (``models/networks_2d/unet_ddpm.py``: two
64-512-channel UNets per network) with their iteration as ``train_semi_superdiff_2d.py`` (commit dac1ad6)
and ``pretrain_superdiff_unsup_2d.py`` run it: Dice loss, Adam, detached rounds that restart from the
teacher's mask, the unsupervised half backpropagated before the supervised half. Their checkout is an
argument and is imported, never copied. Its network needs ``denoising_diffusion_pytorch`` (their pinned
2.0.16, installed without its dependencies); the imports that the timed code never calls (torchvision,
accelerate, ema_pytorch, pytorch_fid) are stubbed with empty modules.

Every measurement runs in a fresh process (so peak RSS is its own), ours and theirs taking turns, so that
drifts of the machine's speed hit both alike; medians over ``--repeats``. FLOPs of one iteration come from
``torch.utils.flop_counter.FlopCounterMode``; the machine's peak from a large matmul and a convolution.

    pip install --no-deps denoising_diffusion_pytorch==2.0.16
    git clone https://github.com/ciampluca/hebbian-bootstraping-semi-supervised-medical-imaging REF
    python benchmarks/reference_speed.py --reference REF [--threads 2] [--repeats 2] [--profile]
    python benchmarks/reference_speed.py --implementations ours ours-amp   # what amp gains
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "bundle"))  # the bundle's scripts package
CONFIGS = os.path.join(ROOT, "bundle", "configs")
SIZE, CLASSES, BATCH, ROUNDS = 128, 4, 8, 5
TASKS = {"co-training": 2 * BATCH, "stage 1": BATCH, "inference": BATCH}   # images per iteration
IMPLEMENTATIONS = {"theirs": "the authors' code", "ours": "ours", "ours-amp": "ours, --amp true (bfloat16)"}
STUBBED = ["torchvision", "torchvision.transforms", "torchvision.utils", "accelerate", "ema_pytorch",
           "pytorch_fid", "pytorch_fid.fid_score", "pytorch_fid.inception"]


def images(count: int) -> torch.Tensor:
    return torch.rand(count, 1, SIZE, SIZE) * 2 - 1


def masks(count: int) -> torch.Tensor:
    return torch.randint(0, CLASSES, (count, SIZE, SIZE))


# ---- ours, built from the bundle's config
def ours(task: str, amp: bool = False):
    """A function running one iteration of ``task`` with the bundle's own trainer or inferer (with ``amp``:
    bfloat16 autocast, ``--amp true``), and the model it serves."""
    from monai.bundle import ConfigParser

    config = ConfigParser()
    config.read_config(os.path.join(CONFIGS, "train.yaml"))
    settings = {
        "num_classes": CLASSES, "spatial_size": [SIZE, SIZE], "rounds": ROUNDS, "amp": amp, "max_epochs": 1, "pretrain_epochs": 1,
        "epoch_length": 1, "train#handlers": [], "pretrain#handlers": [],
        "unlabeled_dataloader": f"$[{{'image': torch.rand({BATCH}, 1, {SIZE}, {SIZE}) * 2 - 1}}]",
        "train#labeled_dataloader": f"$[{{'image': torch.rand({BATCH}, 1, {SIZE}, {SIZE}) * 2 - 1, "
                                    f"'label': torch.randint(0, {CLASSES}, ({BATCH}, 1, {SIZE}, {SIZE})).float()}}]",
    }
    for key, value in settings.items():
        config[key] = value
    network = config.get_parsed_content("network")
    if task == "inference":
        inferer, batch = config.get_parsed_content("inferer"), images(BATCH)
        network.eval()

        def step():
            with torch.inference_mode():
                inferer(batch, network)
        return step, network
    trainer = config.get_parsed_content("train#trainer" if task == "co-training" else "pretrain#trainer")
    trainer.run()   # sets up its state; later iterations rerun one epoch of one iteration

    def step():
        trainer.state.epoch = trainer.state.iteration = 0
        trainer.run()
    return step, network


# ---- theirs, imported from their checkout
def stub_unused_imports() -> None:
    """Empty modules for what denoising_diffusion_pytorch imports at the top but the timed code never calls."""
    for name in STUBBED:
        try:
            __import__(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__getattr__ = _any_class
            sys.modules[name] = module


def _any_class(attribute: str) -> type:
    """A stub module's attribute: an empty class for any name it is asked for, nothing for dunders."""
    if attribute.startswith("__"):
        raise AttributeError(attribute)
    return type(attribute, (), {})


def theirs(task: str, reference: str):
    """One iteration of ``task`` as the authors' scripts run it, and one of their networks."""
    stub_unused_imports()
    sys.path.insert(0, reference)
    from loss.loss_function import segmentation_loss
    from models.networks_2d.unet_ddpm import SuperDiffusion, unet_ddpm

    def diffusions(model):
        image = SuperDiffusion(model.net, image_size=SIZE, timesteps=1000, objective="pred_noise")
        mask = SuperDiffusion(model.net_seg, image_size=SIZE, timesteps=1000, objective="pred_x0")
        return image, mask

    criterion = segmentation_loss("dice", False)
    student, teacher = unet_ddpm(1, CLASSES), unet_ddpm(1, CLASSES)
    (image1, seg1), (image2, seg2) = diffusions(student), diffusions(teacher)
    if task == "inference":
        batch = images(BATCH)
        student.eval()

        def step():
            with torch.inference_mode():
                seg1(batch, torch.zeros(BATCH, SIZE, SIZE), conditioner="img")
        return step, student
    if task == "stage 1":
        optimizer = torch.optim.Adam(teacher.parameters(), 1e-2)
        batch, mask = images(BATCH), masks(BATCH).unsqueeze(1)

        def step():
            optimizer.zero_grad()
            _, pseudo = seg2(batch, torch.zeros_like(mask), conditioner="img")
            loss_reconstruction, _ = image2(batch, pseudo, conditioner="target")
            criterion(teacher(pseudo), mask).backward(retain_graph=True)
            teacher.reset_internal_grads()
            loss_reconstruction.backward()
            optimizer.step()
        return step, teacher
    optimizers = [torch.optim.Adam(m.parameters(), 1e-2) for m in (student, teacher)]
    labeled, labels, unlabeled = images(BATCH), masks(BATCH), images(BATCH)

    def half(batch, targets):
        """One half of their iteration: CPS (unlabeled) or supervision (labeled) plus R detached rounds."""
        zero = torch.zeros(batch.shape[0], SIZE, SIZE, dtype=torch.long)
        _, teacher_pred = seg2(batch, zero, conditioner="img")
        _, student_pred = seg1(batch, zero, conditioner="img")
        align = reconstruction = 0.0
        for _ in range(ROUNDS):
            loss_r, reconstructed = image2(batch, teacher_pred.clone().detach(), conditioner="target")
            _, round_pred = seg2(reconstructed.clone().detach(), zero, conditioner="img")
            reconstruction = reconstruction + loss_r
            align = align + criterion(round_pred, targets if targets is not None else student_pred.argmax(1))
        if targets is None:
            main = criterion(student_pred, teacher_pred.argmax(1)) + criterion(teacher_pred, student_pred.argmax(1))
        else:
            main = criterion(student_pred, targets) + criterion(teacher_pred, targets)
        return main + (align + reconstruction) / ROUNDS

    def step():
        for optimizer in optimizers:
            optimizer.zero_grad()
        half(unlabeled, None).backward()
        half(labeled, labels).backward()
        for optimizer in optimizers:
            optimizer.step()
    return step, student


def worker(args: argparse.Namespace) -> None:
    """Time ``args.iterations`` iterations after a warm-up, count one iteration's FLOPs, print JSON."""
    torch.manual_seed(0)
    if args.worker == "theirs":
        step, network = theirs(args.task, args.reference)
    else:
        step, network = ours(args.task, amp=args.worker == "ours-amp")
    step()
    seconds = []
    for _ in range(args.iterations):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    with FlopCounterMode(display=False) as counter:
        step()
    if args.profile:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
            step()
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=12), file=sys.stderr)
    print(json.dumps({
        "seconds": statistics.median(seconds), "flops": counter.get_total_flops(),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "parameters": sum(p.numel() for p in network.parameters()),
    }))


def machine_peak(threads: int) -> dict[str, float]:
    """Measured FLOP/s of a 2048 x 2048 matmul and of a 64-channel 3x3 convolution on 8 x 128 x 128, fp32 and bf16."""
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    x, w = torch.randn(8, 64, SIZE, SIZE), torch.randn(64, 64, 3, 3)
    cases = {"matmul": (lambda t: t[0] @ t[1], (a, b)),
             "conv": (lambda t: torch.nn.functional.conv2d(t[0], t[1], padding=1), (x, w))}
    peak = {}
    for name, (op, tensors) in cases.items():
        for dtype in (torch.float32, torch.bfloat16):
            inputs = [t.to(dtype) for t in tensors]
            with FlopCounterMode(display=False) as counter:
                op(inputs)
            op(inputs)
            best = min(_timed(op, inputs) for _ in range(5))
            peak[f"{name} {str(dtype).split('.')[-1]}"] = counter.get_total_flops() / best
    return peak


def _timed(op, inputs) -> float:
    start = time.perf_counter()
    op(inputs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", help="a checkout of the authors' repository (needed for theirs)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="turns of each measurement (fresh processes)")
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations per process, after a warm-up")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--profile", action="store_true", help="print each process's top operators to stderr")
    parser.add_argument("--implementations", nargs="+", default=list(IMPLEMENTATIONS), choices=list(IMPLEMENTATIONS))
    parser.add_argument("--worker", choices=list(IMPLEMENTATIONS), help=argparse.SUPPRESS)
    parser.add_argument("--task", choices=list(TASKS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if "theirs" in args.implementations and not args.reference:
        parser.error("--reference: the authors' checkout is needed to time their code")
    torch.set_num_threads(args.threads)
    if args.worker:
        return worker(args)

    results: dict = {}
    for _ in range(args.repeats):
        for task in args.tasks:
            for who in args.implementations:
                command = [sys.executable, __file__, *sys.argv[1:], "--worker", who, "--task", task]
                output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True,
                                        env={**os.environ, "OMP_NUM_THREADS": str(args.threads)}).stdout
                results.setdefault((task, who), []).append(json.loads(output.strip().splitlines()[-1]))
    peak = machine_peak(args.threads)
    best_peak = max(value for key, value in peak.items() if "float32" in key)
    print(f"{args.threads} threads, medians of {args.repeats} processes x {args.iterations} iterations; "
          "peak GFLOP/s: " + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in peak.items()))
    print("| task | implementation | s / iteration | images / s | peak RSS (GB) | GFLOP / iteration "
          "| achieved GFLOP/s | share of fp32 peak | parameters (one network) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (task, who), runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        flops = runs[0]["flops"]
        print(f"| {task} | {IMPLEMENTATIONS[who]} | {seconds:.3f} | {TASKS[task] / seconds:.2f} | "
              f"{max(r['peak_rss_gb'] for r in runs):.2f} | {flops / 1e9:.1f} | {flops / seconds / 1e9:.1f} | "
              f"{flops / seconds / best_peak:.0%} | {runs[0]['parameters'] / 1e6:.2f} M |")
    baseline = args.implementations[0]
    for task in args.tasks:
        for who in args.implementations[1:]:
            ratio = statistics.median(r["seconds"] for r in results[(task, baseline)]) / statistics.median(
                r["seconds"] for r in results[(task, who)])
            print(f"{task}: {IMPLEMENTATIONS[who]} at {ratio:.2f}x the images / s of {IMPLEMENTATIONS[baseline]}")


if __name__ == "__main__":
    main()
