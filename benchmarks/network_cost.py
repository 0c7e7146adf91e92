"""Parameters and step times of the dual-pathway network: shared body vs one UNet per pathway.

Prints, per design: parameter count, one mask-pathway forward+backward, one teacher-pretraining
iteration and one co-training iteration (labeled + unlabeled batch, R rounds), measured side by side in
one process, the two designs alternating (medians of ``--repeats`` runs after one warm-up).

    python benchmarks/network_cost.py --size 128 --channels 16 32 64 128 --num-classes 4 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from monai.losses import DiceCELoss
from monai.networks.schedulers import DDPMScheduler

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bundle"))
from scripts.cotraining import CoTrainer  # noqa: E402
from scripts.diffusion import ImageReconstruction  # noqa: E402
from scripts.networks import DualPathwayDiffusionUNet  # noqa: E402
from scripts.ramps import LinearRamp  # noqa: E402
from scripts.teacher_pretraining import TeacherPretrainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--spatial-dims", type=int, default=2)
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--norm-groups", type=int, default=8)
    parser.add_argument("--num-classes", type=int, default=4)
    parser.add_argument("--image-channels", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8, help="unlabeled batch; the labeled batch is the same")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scheduler = DDPMScheduler(num_train_timesteps=1000, schedule="linear_beta", beta_start=1e-4, beta_end=0.02)
    shape = (args.batch_size, args.image_channels, *([args.size] * args.spatial_dims))
    loss = DiceCELoss(to_onehot_y=True, softmax=True, lambda_dice=0.0)
    print(f"input {shape}, channels {args.channels}, {args.num_classes} classes, R={args.rounds}, "
          f"{args.threads} threads")

    def network(shared: bool) -> DualPathwayDiffusionUNet:
        return DualPathwayDiffusionUNet(
            args.spatial_dims, args.image_channels, args.num_classes, channels=args.channels,
            attention_levels=[False] * len(args.channels), num_res_blocks=1, norm_num_groups=args.norm_groups,
            num_head_channels=args.channels[-1], shared_body=shared,
        )

    def setup(shared: bool) -> dict:
        net, student = network(shared), network(shared)
        images = torch.rand(shape) * 2 - 1
        labels = torch.randint(0, args.num_classes, (args.batch_size, 1, *shape[2:])).float()
        unlabeled = [{"image": images}]
        reconstruction = ImageReconstruction(scheduler)
        pretrainer = TeacherPretrainer(
            "cpu", 1, unlabeled, net, torch.optim.Adam(net.parameters(), 1e-3), scheduler, reconstruction
        )
        cotrainer = CoTrainer(
            "cpu", 1, unlabeled, [{"image": images, "label": labels}], student,
            torch.optim.Adam(student.parameters(), 1e-3), loss, LinearRamp(5.0, 1), teacher=net,
            teacher_optimizer=torch.optim.Adam(net.parameters(), 1e-3), noise_scheduler=scheduler,
            reconstruction=reconstruction, rounds=args.rounds,
        )

        def mask_step():
            noise = torch.randn(args.batch_size, args.num_classes, *shape[2:])
            loss(net(images, noise, torch.zeros(args.batch_size, dtype=torch.long)), labels).backward()

        return {
            "params": sum(p.numel() for p in net.parameters()),
            "mask pathway fwd+bwd": mask_step,
            "pretraining iteration": pretrainer.run,
            "co-training iteration": cotrainer.run,
        }

    designs = {"shared body": setup(True), "two bodies": setup(False)}
    times = {name: {} for name in designs}
    for step in ("mask pathway fwd+bwd", "pretraining iteration", "co-training iteration"):
        # the two designs alternate, so that drifts of the machine's speed hit both alike
        for name, design in designs.items():
            design[step]()  # warm-up
        samples = {name: [] for name in designs}
        for _ in range(args.repeats):
            for name, design in designs.items():
                start = time.perf_counter()
                design[step]()
                samples[name].append(time.perf_counter() - start)
        for name in designs:
            times[name][step] = statistics.median(samples[name])
    for name, design in designs.items():
        print(f"{name:12s} params {design['params'] / 1e6:6.2f} M | "
              + " | ".join(f"{step} {seconds:6.3f} s" for step, seconds in times[name].items()))


if __name__ == "__main__":
    main()
