"""Figures of an experiment (PNG, matplotlib): test scores with confidence intervals per method and label
fraction (the paper's Fig. 4/5), validation curves, each run's score against its training compute, and a
qualitative grid per dataset (the paper's Fig. 3) of sample, pseudo-label, prediction, target, errors and
per-pixel uncertainty."""

from __future__ import annotations

import copy
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from scripts.handlers import LABEL_COLOURS  # noqa: E402
from scripts.losses import normalized_entropy  # noqa: E402
from .aggregate import METRICS, Summary  # noqa: E402

LABEL_CMAP = ListedColormap(LABEL_COLOURS / 255.0)
TEACHER_FILE = "cotrained_teacher.pt"  # written by co-training runs beside model.pt


def _save(figure, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path


def score_bars(summaries: dict[tuple, Summary], dataset: str, methods: dict[str, str], fractions: list[float],
               metric: str, path: str, confidence: float = 0.90) -> str:
    """Grouped bars: one group per label fraction, one bar per method, whiskers = the confidence interval."""
    figure, axis = plt.subplots(figsize=(1.2 + 0.45 * len(methods) * len(fractions), 3.6))
    width = 0.8 / len(methods)
    for m, (method, label) in enumerate(methods.items()):
        entries = [(i, summaries[dataset, f, method, metric]) for i, f in enumerate(fractions)
                   if (dataset, f, method, metric) in summaries]
        if not entries:
            continue
        x = np.array([i for i, _ in entries]) + (m - (len(methods) - 1) / 2) * width
        means = [s.mean for _, s in entries]
        errors = [0.0 if s.n < 2 else s.half_width for _, s in entries]
        axis.bar(x, means, width, yerr=errors, capsize=3, label=label)
    axis.set_xticks(range(len(fractions)), [f"{f:g} %" for f in fractions])
    axis.set_xlabel("labeled fraction")
    axis.set_ylabel(f"test {METRICS[metric]} (mean, {confidence * 100:g} % CI)")
    axis.set_title(dataset)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    return _save(figure, path)


def score_against_time(records: list[dict], dataset: str, methods: dict[str, str], fractions: list[float],
                       metric: str, path: str) -> str:
    """One point per run: its test ``metric`` against its training compute (PFLOP, log scale) where every run
    recorded it, else against its wall time (runs whose time is not wholly known, ``timed`` false, left out);
    a colour per method, a marker per label fraction."""
    shown = [r for r in records if r["dataset"] == dataset and metric in r["test"]]
    by_flops = bool(shown) and all(r.get("training_flops") for r in shown)
    if not by_flops:
        shown = [r for r in shown if r.get("seconds") and r.get("timed", True)]
    cost = (lambda r: r["training_flops"] / 1e15) if by_flops else (lambda r: r["seconds"] / 60)
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    markers = dict(zip(fractions, "osD^v<>p*h"))
    for m, (method, label) in enumerate(methods.items()):
        for fraction in fractions:
            runs = [r for r in shown if (r["label_fraction"], r["method"]) == (fraction, method)]
            if runs:
                axis.scatter([cost(r) for r in runs], [r["test"][metric]["mean"] for r in runs],
                             color=f"C{m % 10}", marker=markers[fraction], label=f"{label}, {fraction:g} %")
    axis.set_xscale("log")
    axis.set_xlabel("training compute (PFLOP, log scale)" if by_flops else "wall time of the run (minutes, log scale)")
    axis.set_ylabel(f"test {METRICS[metric]}")
    axis.set_title(f"{dataset}: what each result cost")
    axis.grid(alpha=0.3)
    if shown:
        axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        axis.text(0.5, 0.5, "no run whose time is wholly known", ha="center", va="center", transform=axis.transAxes)
    return _save(figure, path)


def validation_curves(records: list[dict], dataset: str, methods: dict[str, str], fractions: list[float],
                      path: str) -> str:
    """Validation mean Dice per epoch: one panel per label fraction, a thin line per seed and a thick
    line for the mean over seeds, per method."""
    figure, axes = plt.subplots(1, len(fractions), figsize=(4.2 * len(fractions), 3.4), squeeze=False, sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, fraction in zip(axes[0], fractions):
        for m, (method, label) in enumerate(methods.items()):
            curves = [dict(r["validation"]["val_mean_dice"]) for r in records
                      if r["dataset"] == dataset and r["label_fraction"] == fraction and r["method"] == method
                      and "val_mean_dice" in r.get("validation", {})]
            colour = colours[m % len(colours)]
            for curve in curves:
                axis.plot(list(curve), list(curve.values()), color=colour, alpha=0.3, linewidth=0.8)
            shared = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
            if shared:
                axis.plot(shared, [np.mean([c[e] for c in curves]) for e in shared], color=colour, linewidth=2,
                          label=f"{label} (n={len(curves)})")
        axis.set_title(f"{dataset}, {fraction:g} % labeled")
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[0][0].set_ylabel("validation mean Dice")
    return _save(figure, path)


def _slice(volume: torch.Tensor, index: int | None) -> np.ndarray:
    """A 2D array of a (C, H, W[, D]) tensor: the first channel, at ``index`` along the last axis in 3D."""
    array = volume[0] if volume.ndim == 3 else volume[0, ..., index]
    return array.detach().float().cpu().numpy()


def load_models(parser, model_dir: str, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """The run's student (``model.pt``) and, for co-training runs, its teacher at the end of training
    (``cotrained_teacher.pt``), both plain state dicts."""
    network = parser.get_parsed_content("network_def").to(device).eval()
    network.load_state_dict(torch.load(os.path.join(model_dir, "model.pt"), map_location=device, weights_only=True))
    teacher_path = os.path.join(model_dir, TEACHER_FILE)
    if not os.path.isfile(teacher_path):
        return network, None
    teacher = parser.get_parsed_content("teacher_def").to(device).eval()
    teacher.load_state_dict(torch.load(teacher_path, map_location=device, weights_only=True))
    return network, teacher


def spread_samples(labels: list[torch.Tensor], num_samples: int) -> list[int]:
    """Indices of targets with the most foreground classes, then the most foreground voxels, spread out."""
    ranked = sorted(range(len(labels)), key=lambda i: (len(torch.unique(labels[i])), int((labels[i] > 0).sum())),
                    reverse=True)
    candidates = sorted(ranked[: num_samples * 4])
    return [candidates[int(i)] for i in np.linspace(0, len(candidates) - 1, min(num_samples, len(candidates))).round()]


def sample_tiles(image: torch.Tensor, target: torch.Tensor, network, teacher, inferer, sampler) -> dict:
    """2D tiles of one sample (the axial slice with the most foreground for a volume): image, teacher's
    pseudo-label, prediction, target and the normalised entropy of the sampler's noise draws."""
    prediction = inferer(image, network)[0].argmax(0, keepdim=True)
    uncertainty = normalized_entropy(sampler(image, network))[0]
    depth = int((target[0] > 0).flatten(0, 1).sum(0).argmax()) if target.ndim == 4 else None
    tiles = {"image": _slice(image[0], depth), "prediction": _slice(prediction, depth),
             "target": _slice(target, depth), "uncertainty": _slice(uncertainty, depth)}
    if teacher is not None:
        tiles["pseudo-label (teacher)"] = _slice(inferer(image, teacher)[0].argmax(0, keepdim=True), depth)
    return tiles


def plot_grid(rows: list[dict], columns: list[str], path: str) -> str:
    """One row per sample, one column per tile; errors are the prediction's wrong pixels in red."""
    figure, axes = plt.subplots(len(rows), len(columns), figsize=(2.1 * len(columns) + 0.8, 2.1 * len(rows)),
                                squeeze=False, layout="constrained")
    for row, tiles in enumerate(rows):
        for col, name in enumerate(columns):
            axis = axes[row][col]
            axis.axis("off")
            if row == 0:
                axis.set_title(name, fontsize=9)
            if name == "image":
                axis.imshow(tiles["image"], cmap="gray")
            elif name == "uncertainty":
                shown = axis.imshow(tiles["uncertainty"], cmap="magma", vmin=0, vmax=1)
            elif name == "errors":
                axis.imshow(tiles["image"], cmap="gray")
                wrong = np.ma.masked_where(tiles["prediction"] == tiles["target"], np.ones_like(tiles["target"]))
                axis.imshow(wrong, cmap=ListedColormap(["red"]), alpha=0.8)
            else:
                axis.imshow(tiles[name], cmap=LABEL_CMAP, vmin=0, vmax=len(LABEL_COLOURS) - 1, interpolation="nearest")
    figure.colorbar(shown, ax=axes[:, -1].tolist(), shrink=0.6, label="normalised entropy")
    return _save(figure, path)


def qualitative_grid(config_files: list[str], model_dir: str, path: str, num_samples: int = 4,
                     num_draws: int = 8) -> str:
    """For test images of a run (config files as the run used them, its ``models`` folder): the image, the
    teacher's pseudo-label (co-training runs), the student's prediction, the target, the errors and the
    normalised entropy of ``num_draws`` noise draws (the paper's Fig. 3)."""
    from monai.bundle import ConfigParser
    from monai.data import DataLoader

    parser = ConfigParser()
    parser.read_config(config_files)
    device = torch.device("cpu")
    network, teacher = load_models(parser, model_dir, device)
    inferer = parser.get_parsed_content("inferer")
    sampler = copy.copy(inferer)
    sampler.num_draws = num_draws
    dataset = parser.get_parsed_content("test#dataset")
    items = [dataset[i] for i in range(len(dataset))]
    rows = []
    with torch.no_grad():
        for index in spread_samples([item["label"] for item in items], num_samples):
            batch = next(iter(DataLoader([items[index]], batch_size=1)))
            rows.append(sample_tiles(batch["image"].to(device), batch["label"][0], network, teacher, inferer, sampler))
    columns = ["image", "pseudo-label (teacher)", "prediction", "target", "errors", "uncertainty"]
    if teacher is None:
        columns.remove("pseudo-label (teacher)")
    return plot_grid(rows, columns, path)
