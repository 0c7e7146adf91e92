"""Diagnostics of the method on real data, from real checkpoints; each prints a table.

    gradients  the gradient norm of every loss term (as weighted in the loss) on the teacher's and the
               student's mask logits and on each network's weights, from a co-training checkpoint
    stage1     the stage-1 cycle loss when the image pathway gets the teacher's softmax mask, its one-hot
               argmax, the softmax slightly noised, or a blank (uniform) mask: a large jump from softmax to
               argmax or noised means that the mask carries a hidden code of the image, not a partition;
               and the share of reconstructed pixels that a clip to the intensity range cuts, per time step
    probe      1x1 and 3x3 convolutions fitted on the labeled images over the teacher's mask log-probabilities, over the
               raw image and over a random teacher's logits, scored by validation Dice
    teacher    the co-trained teacher (cotrained_teacher.pt, the last epoch's) against the student: the best
               validation checkpoint (model.pt beside it) and the student of the same last epoch
               (train_state.pt), scored as validation scores (mean Dice, the validation inferer and size) on
               the unlabeled training images, whose masks the dataset has, and on the validation images:
               inference only
    measure    a binary model (model.pt) on the test split, at the validation size, every pixel pooled: Dice
               and Jaccard at the argmax, and at the foreground threshold that maximises the test split's own
               Jaccard (the measure of the paper's code). The second is tuned on the test split: it shows
               how much of a gap to published numbers is the measure, and is never a result of its own; it
               never falls below calling every pixel foreground (the lowest threshold does that)

    python benchmarks/method_diagnostics.py gradients --checkpoint RUN/models/train_state.pt --overlay ...
    python benchmarks/method_diagnostics.py stage1 --checkpoint RUN/models/teacher.pt --overlay ...
    python benchmarks/method_diagnostics.py probe --checkpoint RUN/models/teacher.pt --overlay ...
    python benchmarks/method_diagnostics.py teacher --checkpoint RUN/models/cotrained_teacher.pt \
        --dataset volumes la --dataset-dir ../shared/data/LA --overlay profiles/cpu_3d.yaml --settings RUN/settings.yaml
    python benchmarks/method_diagnostics.py measure --checkpoint RUN/models/model.pt --dataset glas \
        --dataset-dir DIR --overlay profiles/paper_schedule_2d.yaml --settings RUN/settings.yaml
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import torch
import yaml
from monai.bundle import ConfigParser
from monai.metrics import DiceMetric
from monai.networks.utils import one_hot

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "bundle"))  # the bundle's scripts package
CONFIGS = os.path.join(ROOT, "bundle", "configs")

from monai.data import DataLoader, Dataset  # noqa: E402

from scripts.datasets import source_of  # noqa: E402
from scripts.diffusion import mask_condition, mask_from_noise, predict_x0, q_sample  # noqa: E402


DEFAULTS = {"dataset_dir": os.path.join(ROOT, "..", "shared", "data", "ACDC"), "label_fraction": 5, "seed": 0}


def build(args: argparse.Namespace, scratch: str) -> ConfigParser:
    """train.yaml + the dataset overlay + the run's overlays and options, writing only to ``scratch``."""
    config = ConfigParser()
    files = ["train.yaml", *(f"datasets/{name}.yaml" for name in args.dataset), *args.overlay]
    config.read_config([f if os.path.isabs(f) or os.path.isfile(f) else os.path.join(CONFIGS, f) for f in files])
    # the defaults, then a run's settings, then what the command line gives: a run's seed and split stay its own
    settings = dict(DEFAULTS)
    for path in args.settings or []:
        with open(path) as f:
            settings.update(yaml.safe_load(f))
    given = {"dataset_dir": args.dataset_dir, "label_fraction": args.label_fraction, "seed": args.seed}
    settings.update({key: value for key, value in given.items() if value is not None})
    settings.update({key: yaml.safe_load(value) for key, value in (o.split("=", 1) for o in args.option)})
    settings.update({"output_dir": scratch, "ckpt_dir": scratch, "resume": False})
    for key, value in settings.items():
        config[key] = value
    return config


def batches(loader, count: int):
    iterator = iter(loader)
    for _ in range(count):
        batch = next(iterator, None)
        if batch is None:
            iterator = iter(loader)
            batch = next(iterator)
        yield batch


def norm(tensors) -> float:
    return sum(t.detach().pow(2).sum().item() for t in tensors if t is not None) ** 0.5


def gradients(config: ConfigParser, args: argparse.Namespace) -> None:
    trainer = config.get_parsed_content("train#trainer")
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    trainer.network.load_state_dict(state["student"])
    trainer.teacher.load_state_dict(state["teacher"])
    epoch = state.get("trainer", {}).get("epoch", config.get_parsed_content("max_epochs"))
    weight = float(trainer.consistency_weight(epoch)) if args.lam is None else args.lam
    trainer.state.device = torch.device("cpu")
    networks = {"teacher": trainer.teacher, "student": trainer.network}
    rows: dict[str, list[list[float]]] = {}
    for batch in batches(trainer.data_loader, args.batches):
        images, labels, n = trainer.mixed_batch(batch)
        losses = trainer.losses(images, labels, n)
        logits = {"teacher": losses.teacher_logits, "student": losses.student_logits}
        terms = {**losses.fixed, **{name: weight * value for name, value in losses.weighted.items()}}
        for name, term in terms.items():
            values = [term.item()]
            for owner in ("teacher", "student"):
                grad = torch.autograd.grad(term, logits[owner], retain_graph=True, allow_unused=True)[0]
                values.append(norm([grad]))
            for owner, network in networks.items():
                params = [p for p in network.parameters() if p.requires_grad]
                values.append(norm(torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)))
            rows.setdefault(name, []).append(values)
    print(f"checkpoint {args.checkpoint} (epoch {epoch}), lambda {weight:g}, mean over {args.batches} batches")
    print("| term (as weighted) | value | teacher logits | student logits | teacher weights | student weights |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, values in rows.items():
        means = torch.tensor(values).mean(dim=0).tolist()
        print(f"| {name} | " + " | ".join(f"{v:.3g}" for v in means) + " |")


def stage1(config: ConfigParser, args: argparse.Namespace) -> None:
    trainer = config.get_parsed_content("pretrain#trainer")
    teachers = {"trained": args.checkpoint, "untrained": None}
    generator = torch.Generator().manual_seed(0)
    conditions = {
        "softmax": lambda logits: mask_condition(logits),
        "one-hot argmax": lambda logits: mask_condition(logits, hard=True),
        "softmax + N(0, 0.02)": lambda logits: torch.softmax(logits, 1)
        + 0.02 * torch.randn(logits.shape, generator=generator),
        "blank (uniform)": lambda logits: torch.full_like(logits, 1.0 / logits.shape[1]),
    }
    data = list(batches(trainer.data_loader, args.batches))
    clipped = {}
    print(f"stage-1 cycle loss (image input {trainer.image_input}, {trainer.reconstruction.space} space), "
          f"mean over {args.batches} batches, the same noise and time steps for every mask")
    print("| teacher | " + " | ".join(conditions) + " | argmax / softmax |")
    print("| --- |" + " ---: |" * (len(conditions) + 1))
    for label, path in teachers.items():
        if path is not None:
            trainer.network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        trainer.network.eval()
        losses = []
        for condition in conditions.values():
            torch.manual_seed(1)
            with torch.no_grad():
                losses.append(sum(trainer.cycle(b["image"].as_tensor(), condition)[0].item() for b in data) / len(data))
        print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in losses) + f" | {losses[1] / losses[0]:.2f} |")
        clipped[label] = clipped_fraction(trainer, data)
        trainer.network = config.get_parsed_content("teacher_def", lazy=False)   # a fresh, random teacher next
    print(f"\nshare of reconstructed pixels outside the clip range {trainer.reconstruction.clip} (the clamp's "
          "gradient is 0 there), the image pathway started from pure noise / from q(i, t), given the softmax mask")
    print("| teacher | " + " | ".join(f"t = {t}" for t in CLIP_TIMESTEPS) + " |")
    print("| --- |" + " ---: |" * len(CLIP_TIMESTEPS))
    for label, shares in clipped.items():
        print(f"| {label} | " + " | ".join(f"{a:.0%} / {b:.0%}" for a, b in shares) + " |")


CLIP_TIMESTEPS = (100, 300, 500, 700, 900)


def clipped_fraction(trainer, data) -> list[tuple[float, float]]:
    """For each time step of ``CLIP_TIMESTEPS``: the share of reconstructed pixels outside the clip range
    (-1, 1 when the config clips nothing), from pure noise and from the noised image."""
    low, high = trainer.reconstruction.clip or (-1.0, 1.0)
    scheduler, network = trainer.noise_scheduler, trainer.network
    shares = []
    for t in CLIP_TIMESTEPS:
        outside = [0.0, 0.0]
        for batch in data:
            images = batch["image"].as_tensor()
            timesteps = torch.full((images.shape[0],), t, dtype=torch.long)
            torch.manual_seed(2)
            with torch.no_grad():
                mask = torch.softmax(mask_from_noise(network, scheduler, images, timesteps), 1)
                for k, source in enumerate((torch.zeros_like(images), images)):
                    noisy = q_sample(scheduler, source, torch.randn_like(images), timesteps)
                    reconstruction = predict_x0(scheduler, noisy, network.image_pathway(noisy, mask, timesteps), timesteps)
                    outside[k] += ((reconstruction < low) | (reconstruction > high)).float().mean().item() / len(data)
        shares.append(tuple(outside))
    return shares


def features(network, inferer, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.log(inferer(images, network).clamp_min(1e-6))   # log-probabilities at the inference t


def probe(config: ConfigParser, args: argparse.Namespace) -> None:
    num_classes = config.get_parsed_content("num_classes")
    transforms = config.get_parsed_content("eval_transforms")
    datalist = config.get_parsed_content("datalist")
    inferer = config.get_parsed_content("inferer")

    def stack(items):
        data = [transforms(item) for item in items]
        return torch.stack([d["image"].as_tensor() for d in data]), torch.stack([d["label"].as_tensor() for d in data])

    train_x, train_y = stack(datalist["labeled"])
    val_x, val_y = stack(datalist["validation"])
    trained = config.get_parsed_content("teacher_def", lazy=False)
    trained.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
    trained.eval()
    random_teacher = config.get_parsed_content("teacher_def", lazy=False).eval()
    inputs = {
        "raw image": (train_x, val_x),
        "trained teacher's logits": (features(trained, inferer, train_x), features(trained, inferer, val_x)),
        "random teacher's logits": (features(random_teacher, inferer, train_x), features(random_teacher, inferer, val_x)),
    }
    print(f"probes fitted on {len(train_x)} labeled images ({args.probe_steps} full-batch Adam steps, "
          "class-balanced cross-entropy), "
          f"validation Dice on {len(val_x)} images (mean over foreground classes, images with the class)")
    print("| input | 1x1 convolution | 3x3 convolution |")
    print("| --- | ---: | ---: |")
    target = train_y[:, 0].long()
    balance = 1.0 / torch.bincount(target.flatten(), minlength=num_classes).clamp_min(1).float()
    for name, (x_train, x_val) in inputs.items():
        scores = []
        for kernel in (1, 3):
            torch.manual_seed(0)
            layer = torch.nn.Conv2d(x_train.shape[1], num_classes, kernel, padding=kernel // 2)
            optimizer = torch.optim.Adam(layer.parameters(), lr=5e-2)
            for _ in range(args.probe_steps):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(layer(x_train), target, weight=balance / balance.sum()).backward()
                optimizer.step()
            with torch.no_grad():
                prediction = one_hot(layer(x_val).argmax(1, keepdim=True), num_classes)
            dice = DiceMetric(include_background=False, ignore_empty=True)
            scores.append(dice(prediction, one_hot(val_y.long(), num_classes)).nanmean().item())
        print(f"| {name} | {scores[0]:.3f} | {scores[1]:.3f} |")


def teacher(config: ConfigParser, args: argparse.Namespace) -> None:
    datalist = config.get_parsed_content("datalist")
    layout = config.get_parsed_content("dataset_layout")
    source = source_of(layout)
    cases, _ = source.find_cases(config.get_parsed_content("data_root"), config.get_parsed_content("prepared_dir"),
                                 **{**source.options, **config.get_parsed_content("dataset_options")})
    masks = {case.image: case.label for case in cases if case.label}
    images = {"unlabeled": [dict(i, label=masks[i["image"]]) for i in datalist["unlabeled"] if i["image"] in masks],
              "validation": datalist["validation"]}
    evaluator = config.get_parsed_content("validate#evaluator")
    transforms = config.get_parsed_content("validate#preprocessing")
    loaders = {name: DataLoader(Dataset(items, transforms), batch_size=1) for name, items in images.items()}
    folder = os.path.dirname(args.checkpoint)
    models = {"student, best validation (model.pt)": torch.load(os.path.join(folder, "model.pt"), map_location="cpu",
                                                                 weights_only=True)}
    last_state = os.path.join(folder, "train_state.pt")
    if os.path.isfile(last_state):
        models["student, last epoch (train_state.pt)"] = torch.load(last_state, map_location="cpu",
                                                                    weights_only=True)["student"]
    models["co-trained teacher, last epoch"] = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    print(f"{layout}: mean Dice of the validation inferer at the validation size, per image (volume), "
          f"over {len(images['unlabeled'])} unlabeled training images with masks and {len(images['validation'])} "
          "validation images")
    print("| model | unlabeled | validation |")
    print("| --- | ---: | ---: |")
    for name, state in models.items():
        evaluator.network.load_state_dict(state)
        scores = []
        for loader in loaders.values():
            evaluator.data_loader, evaluator.state.epoch_length = loader, len(loader)
            evaluator.run()
            scores.append(evaluator.state.metrics["val_mean_dice"])
        print(f"| {name} | {scores[0]:.3f} | {scores[1]:.3f} |")


def pooled_scores(probabilities: torch.Tensor, labels: torch.Tensor, threshold: float) -> tuple[float, float]:
    """Dice and Jaccard of every pixel pooled, foreground where its probability exceeds ``threshold``."""
    predicted, truth = probabilities > threshold, labels > 0
    overlap = (predicted & truth).sum().item()
    total, union = predicted.sum().item() + truth.sum().item(), (predicted | truth).sum().item()
    return 2 * overlap / max(total, 1), overlap / max(union, 1)


def measure(config: ConfigParser, args: argparse.Namespace) -> None:
    network, inferer = config.get_parsed_content("network_def"), config.get_parsed_content("inferer")
    network.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
    if network.num_classes != 2:
        raise SystemExit(f"{args.checkpoint}: measure needs a binary model, this one has {network.num_classes} classes.")
    network.eval()
    items = config.get_parsed_content("datalist")["test"]
    loader = DataLoader(Dataset(items, config.get_parsed_content("eval_transforms")), batch_size=1)
    probabilities, labels = [], []
    with torch.no_grad():
        for batch in loader:
            probabilities.append(torch.softmax(inferer(batch["image"], network), dim=1)[:, 1].flatten())
            labels.append(batch["label"].flatten())
    probabilities, labels = torch.cat(probabilities), torch.cat(labels)
    size = "x".join(str(s) for s in batch["image"].shape[2:])
    tuned = max((pooled_scores(probabilities, labels, t / 1000) + (t / 1000,) for t in range(1, 1000)),
                key=lambda scores: scores[1])
    print(f"{len(items)} test images at {size}, every pixel pooled ({args.checkpoint})")
    print("| foreground | pooled Dice | pooled Jaccard |")
    print("| --- | ---: | ---: |")
    print("| argmax | {:.4f} | {:.4f} |".format(*pooled_scores(probabilities, labels, 0.5)))
    print("| probability > {2:.3f}, the test split's best Jaccard (test-tuned) | {0:.4f} | {1:.4f} |".format(*tuned))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("diagnostic", choices=["gradients", "stage1", "probe", "teacher", "measure"])
    parser.add_argument("--checkpoint", required=True,
                        help="train_state.pt (gradients), teacher.pt (stage1, probe), cotrained_teacher.pt (teacher) "
                             "or model.pt (measure)")
    parser.add_argument("--overlay", nargs="*", default=["profiles/cpu_2d.yaml"],
                        help="overlays after train.yaml and the dataset's (relative to bundle/configs or paths)")
    parser.add_argument("--settings", nargs="*", help="YAML files of config ids, e.g. a run's settings.yaml")
    parser.add_argument("--option", nargs="*", default=[], help="KEY=VALUE config ids")
    parser.add_argument("--dataset", nargs="+", default=["acdc"], help="dataset overlays (volumes la for LA)")
    parser.add_argument("--dataset-dir", help=f"default: a settings file's, else {DEFAULTS['dataset_dir']}")
    parser.add_argument("--label-fraction", type=float, help="default: a settings file's, else 5")
    parser.add_argument("--seed", type=int, help="default: a settings file's, else 0")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--lam", type=float, help="lambda for the weighted terms (default: the checkpoint epoch's)")
    parser.add_argument("--probe-steps", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        config = build(args, scratch)
        torch.manual_seed(config.get_parsed_content("seed"))
        diagnostics = {"gradients": gradients, "stage1": stage1, "probe": probe, "teacher": teacher, "measure": measure}
        diagnostics[args.diagnostic](config, args)


if __name__ == "__main__":
    main()
