"""Ignite handlers that MONAI lacks: validation every few epochs and after the last, a stop at the first
non-finite loss, a progress bar drawn once per step, the test report and mask snapshots."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar as IgniteProgressBar
from tqdm.auto import tqdm
from monai.handlers import ValidationHandler
from PIL import Image

from .atomic import atomic_json_dump
from .checkpoints import read_run
from .distributed import is_distributed
from .precision import mixed_precision_advice

logger = logging.getLogger(__name__)


class PeriodicValidation(ValidationHandler):
    """MONAI's epoch-level ``ValidationHandler`` that validates every ``interval`` epochs and after the last
    epoch too, so that the last epochs always take part in choosing the model, and a run shorter than
    ``interval`` still validates (and writes its model). In a run of several processes, each validates its
    share of the images, and all wait until the model is saved."""

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED(event_filter=self.due), self)

    def __call__(self, engine: Engine) -> None:
        super().__call__(engine)
        if is_distributed():
            torch.distributed.barrier()

    def due(self, engine: Engine, epoch: int) -> bool:
        return epoch % self.interval == 0 or epoch == engine.state.max_epochs


class StopOnNonFiniteLoss:
    """Stops training with an error at the first iteration whose loss, or any loss term the trainer reports
    (``output["scalars"]``), is NaN or infinite, naming the iteration and the terms: ignite's
    ``TerminateOnNan`` would end the run as if it had finished, and the test would score a broken model."""

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        values = {"loss": float(output["loss"])}
        values.update({k: v for k, v in output.get("scalars", {}).items() if k.startswith("loss/")})
        broken = {name: value for name, value in values.items() if not np.isfinite(value)}
        if broken:
            advice = mixed_precision_advice(engine.amp, engine.state.device) if getattr(engine, "amp", False) else ""
            raise FloatingPointError(
                f"{type(engine).__name__}: non-finite loss at iteration {engine.state.iteration} (epoch "
                f"{engine.state.epoch}): {', '.join(f'{k} = {v}' for k, v in broken.items())}. Training stopped; "
                "the checkpoints saved so far are kept. Check the data for NaN or infinite values, or lower "
                f"--learning_rate.{advice}"
            )


class _OneDrawPerStep(tqdm):
    """tqdm whose description and postfix are drawn with the next step, not on their own."""

    def set_description(self, desc=None, refresh=True):
        super().set_description(desc, refresh=False)

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        super().set_postfix(ordered_dict, refresh=False, **kwargs)


class ProgressBar(IgniteProgressBar):
    """ignite's ``ProgressBar`` drawn once per step: ignite sets the description and the postfix before it
    advances the bar, and plain tqdm draws the bar for each of them (a log showed every step twice)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pbar_cls = _OneDrawPerStep


class SegmentationReport:
    """Writes per-class and mean metrics of an evaluator to a JSON file (atomically) when it completes.

    ``metric_names`` maps report names to metric names attached with ``save_details=True``
    (per-image, or per-volume, per-class values in ``engine.state.metric_details``; ``count`` says how many,
    ``num_images`` is the first metric's); foreground classes only. With ``model_path``, the report names
    the model file and the run that wrote it (``RunIdentity``). Means leave
    out undefined values (nan: the class is absent from the target; inf: a surface distance to an empty
    prediction), counted in ``num_undefined``.
    """

    def __init__(
        self, output_path: str, metric_names: dict[str, str], class_names: Sequence[str] | None = None,
        model_path: str | None = None,
    ) -> None:
        self.output_path = output_path
        self.metric_names = dict(metric_names)
        self.class_names = list(class_names) if class_names is not None else None
        self.model_path = model_path

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        report: dict = {}
        for report_name, metric_name in self.metric_names.items():
            details = torch.as_tensor(engine.state.metric_details[metric_name], dtype=torch.float64)
            details = details.reshape(details.shape[0], -1)
            undefined = ~torch.isfinite(details)
            details = details.masked_fill(undefined, float("nan"))
            names = self.class_names or [f"class_{c + 1}" for c in range(details.shape[1])]
            per_class = {name: _nanmean(details[:, c]) for c, name in enumerate(names)}
            report[report_name] = {
                "per_class": per_class, "mean": _nanmean(details.nanmean(dim=1)), "num_undefined": int(undefined.sum()),
                "count": int(details.shape[0]),
            }
            report.setdefault("num_images", int(details.shape[0]))
        if self.model_path is not None:
            report["model"] = {"path": os.path.abspath(self.model_path), "run": read_run(self.model_path)}
        atomic_json_dump(report, self.output_path)
        logger.info(f"test report written to {self.output_path}: {report}")
        print(report_table(report, list(self.metric_names)))


def report_table(report: dict, metrics: list[str]) -> str:
    """The report as a table: one row per class and the mean, one column per metric ("-": undefined)."""
    classes = list(report[metrics[0]]["per_class"])
    rows = [(name, [report[m]["per_class"].get(name) for m in metrics]) for name in classes]
    rows.append(("mean", [report[m]["mean"] for m in metrics]))
    width = max(len(name) for name, _ in rows)
    columns = [max(12, len(m) + 2) for m in metrics]
    lines = [f"test metrics, {report['num_images']} cases:",
             " " * width + "".join(f"{m:>{c}}" for m, c in zip(metrics, columns))]
    for name, values in rows:
        lines.append(f"{name:<{width}}" + "".join(f"{'-' if v is None else f'{v:.4f}':>{c}}" for v, c in zip(values, columns)))
    return "\n".join(lines)


def _nanmean(values: torch.Tensor) -> float | None:
    value = values.nanmean().item()
    return None if np.isnan(value) else value


LABEL_COLOURS = np.array(  # RGB of label values 0, 1, 2, ... in snapshots and figures
    [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
     [70, 240, 240], [240, 50, 230], [210, 245, 60]], dtype=np.uint8,
)


class SegmentationSnapshot:
    """Every ``interval`` epochs and at the end, draws the last training batch as a grid (one row per sample,
    ``max_samples`` rows spread over the batch; one column per entry of ``columns``) and saves it as
    ``<output_dir>/<prefix>_epoch_NNNN.png`` and to TensorBoard.

    ``columns`` maps a title to an output key; entries named ``image``/``reconstruction`` are drawn as
    images, any other as a label map (class logits or probabilities are argmax-ed first). 3D data shows
    its middle slice along the last axis.
    """

    def __init__(
        self,
        output_dir: str,
        columns: dict[str, str],
        prefix: str,
        interval: int = 1,
        max_samples: int = 4,
        summary_writer=None,
    ) -> None:
        self.output_dir = output_dir
        self.columns = dict(columns)
        self.prefix = prefix
        self.interval = interval
        self.max_samples = max_samples
        self.summary_writer = summary_writer

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval) | Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        if output is None:  # a resumed stage that had already finished
            return
        rows = []
        batch_size = output["image"].shape[0]
        # rows spread over the batch, so that co-training shows labeled and unlabeled samples
        for i in np.unique(np.linspace(0, batch_size - 1, min(self.max_samples, batch_size)).round().astype(int)):
            tiles = [self._tile(key, output[key][i]) for key in self.columns.values() if output.get(key) is not None]
            rows.append(np.concatenate(tiles, axis=1))
        grid = np.concatenate(rows, axis=0)
        os.makedirs(self.output_dir, exist_ok=True)
        path = os.path.join(self.output_dir, f"{self.prefix}_epoch_{engine.state.epoch:04d}.png")
        Image.fromarray(grid).save(path)
        if self.summary_writer is not None:
            tag = f"{self.prefix}/" + "|".join(self.columns)
            self.summary_writer.add_image(tag, grid, engine.state.epoch, dataformats="HWC")
            self.summary_writer.flush()

    @staticmethod
    def _tile(key: str, item: torch.Tensor) -> np.ndarray:
        item = torch.as_tensor(item).detach().float().cpu()
        if item.ndim == 4:  # C, H, W, D: middle slice
            item = item[..., item.shape[-1] // 2]
        if key in ("image", "reconstruction"):
            channels = item[:3] if item.shape[0] >= 3 else item[:1].expand(3, *item.shape[1:])
            low, high = channels.min(), channels.max()
            rgb = ((channels - low) / (high - low + 1e-8) * 255).round().byte()
            return rgb.permute(1, 2, 0).numpy()
        labels = item.argmax(0) if item.shape[0] > 1 else item[0].round().long()
        return LABEL_COLOURS[labels.numpy().astype(np.int64) % len(LABEL_COLOURS)]
