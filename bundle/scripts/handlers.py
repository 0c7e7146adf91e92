"""Ignite handlers that MONAI lacks: atomic checkpoints, resuming, the test report and mask snapshots."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.handlers import CheckpointLoader, CheckpointSaver
from PIL import Image

from .atomic import atomic_json_dump, atomic_torch_save
from .flags import as_bool

logger = logging.getLogger(__name__)


class _AtomicDiskSaver(BaseSaveHandler):
    """Writes each checkpoint to a temporary file and renames it, so a crash never leaves a partial file.
    With a fixed file name, removing the previous file is skipped: the rename replaces it."""

    def __init__(self, dirname: str, filename: str | None = None) -> None:
        self.dirname = dirname
        self.filename = filename

    def __call__(self, checkpoint, filename: str, metadata=None) -> None:
        atomic_torch_save(checkpoint, os.path.join(self.dirname, self.filename or filename))

    def remove(self, filename: str) -> None:
        if self.filename is None:
            os.remove(os.path.join(self.dirname, filename))


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI's ``CheckpointSaver`` with atomic writes; ``interval_filename`` gives the interval checkpoint a
    fixed name (one file, replaced each time) and ``engine_key`` adds the state of the engine it is attached
    to (epoch, iteration) under that key. Its ``state_dict`` holds the best key metric seen so far, so
    putting the saver in a resumable checkpoint keeps a resumed run from overwriting a better model."""

    def __init__(
        self, save_dir: str, save_dict: dict, interval_filename: str | None = None, engine_key: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(save_dir=save_dir, save_dict=save_dict, **kwargs)
        self.engine_key = engine_key
        for checkpoint in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if checkpoint is not None:
                saver = checkpoint.save_handler
                filename = interval_filename if checkpoint is self._interval_checkpoint else saver.filename
                checkpoint.save_handler = _AtomicDiskSaver(saver.dirname, filename)

    def attach(self, engine: Engine) -> None:
        if self.engine_key is not None:
            self.save_dict[self.engine_key] = engine
        super().attach(engine)

    def state_dict(self) -> dict:
        return self._key_metric_checkpoint.state_dict() if self._key_metric_checkpoint is not None else {}


class ResumeCheckpointLoader(CheckpointLoader):
    """MONAI's ``CheckpointLoader`` that acts only when ``enabled`` and the checkpoint exists; a stage whose
    checkpoint says it finished is then skipped, an interrupted one continues where it stopped.
    ``engine_key`` restores the state of the engine it is attached to from that key."""

    def __init__(
        self, load_path: str, load_dict: dict, enabled: bool = True, engine_key: str | None = None, **kwargs
    ) -> None:
        super().__init__(load_path=load_path, load_dict=dict(load_dict), **kwargs)
        self.enabled = as_bool(enabled)
        self.engine_key = engine_key

    def attach(self, engine: Engine) -> None:
        if self.engine_key is not None:
            self.load_dict[self.engine_key] = engine
        if self.enabled and os.path.isfile(self.load_path):
            super().attach(engine)
        elif self.enabled:
            logger.info(f"nothing to resume: {self.load_path} does not exist, starting afresh.")


class SegmentationReport:
    """Writes per-class and mean metrics of an evaluator to a JSON file (atomically) when it completes.

    ``metric_names`` maps report names to metric names attached with ``save_details=True``
    (per-image, or per-volume, per-class values in ``engine.state.metric_details``; ``count`` says how many,
    ``num_images`` is the first metric's); foreground classes only. Means leave
    out undefined values (nan: the class is absent from the target; inf: a surface distance to an empty
    prediction), counted in ``num_undefined``.
    """

    def __init__(self, output_path: str, metric_names: dict[str, str], class_names: Sequence[str] | None = None):
        self.output_path = output_path
        self.metric_names = dict(metric_names)
        self.class_names = list(class_names) if class_names is not None else None

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
        atomic_json_dump(report, self.output_path)
        logger.info(f"test report written to {self.output_path}: {report}")


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
