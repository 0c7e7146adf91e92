"""Ignite handlers that MONAI lacks: atomic checkpoints, resuming, the test report, mask snapshots and a stop
at the first non-finite loss."""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Sequence

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar as IgniteProgressBar
from ignite.handlers.checkpoint import BaseSaveHandler
from tqdm.auto import tqdm
from monai.handlers import CheckpointLoader, CheckpointSaver, ValidationHandler
from PIL import Image

from .atomic import atomic_json_dump, atomic_torch_save
from .distributed import is_distributed, is_main_process

logger = logging.getLogger(__name__)


class RunIdentity:
    """Who wrote a checkpoint: a hash of the run's command and config files, the time the run first started,
    and a random id (rank 0's in a run of several processes). Saved beside ``model.pt`` (``run_file``) and in
    the training state; a resumed run takes back the identity of its training state, so every file of one
    run, however often it was interrupted, names the same run."""

    def __init__(self) -> None:
        identity = [{
            "id": uuid.uuid4().hex[:12],
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config_hash": _command_hash(sys.argv),
        }]
        if is_distributed():  # one run, however many processes: rank 0's identity
            torch.distributed.broadcast_object_list(identity, src=0)
        self.identity = identity[0]

    def state_dict(self) -> dict:
        return dict(self.identity)

    def load_state_dict(self, state: dict) -> None:
        self.identity = dict(state)


def _command_hash(argv: Sequence[str]) -> str:
    """SHA-256 (first 12 hex digits) of the command line and the content of the config files it names."""
    digest = hashlib.sha256("\0".join(argv).encode())
    if "--config_file" in argv[:-1]:
        value = argv[argv.index("--config_file") + 1]
        try:
            files = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            files = value.split(",")
        for path in [files] if isinstance(files, str) else files:
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    digest.update(f.read())
    return digest.hexdigest()[:12]


def run_file(checkpoint_path: str) -> str:
    """The JSON file beside a checkpoint that names the run that wrote it: ``model.pt`` -> ``model.run.json``."""
    return os.path.splitext(checkpoint_path)[0] + ".run.json"


class _AtomicDiskSaver(BaseSaveHandler):
    """Writes each checkpoint to a temporary file and renames it, so a crash never leaves a partial file; in a
    run of several processes, only rank 0 writes.
    With a fixed file name, removing the previous file is skipped: the rename replaces it. With ``run``,
    the run's identity goes to a JSON file beside the checkpoint (``run_file``), so that the checkpoint
    itself stays a plain state dict."""

    def __init__(self, dirname: str, filename: str | None = None, run: RunIdentity | None = None) -> None:
        self.dirname = dirname
        self.filename = filename
        self.run = run

    def __call__(self, checkpoint, filename: str, metadata=None) -> None:
        if not is_main_process():  # in a run of several processes, rank 0 writes
            return
        path = os.path.join(self.dirname, self.filename or filename)
        if self.run is not None:
            atomic_json_dump(self.run.state_dict(), run_file(path))
        atomic_torch_save(checkpoint, path)

    def remove(self, filename: str) -> None:
        if self.filename is None:
            os.remove(os.path.join(self.dirname, filename))


def trainer_state(engine: Engine) -> dict:
    """What a resumed run needs of the trainer ``engine``, by checkpoint key: what its ``checkpoint_state()``
    declares (the trainers of this bundle: their networks and optimizers), or else its network and optimizer."""
    declared = getattr(engine, "checkpoint_state", None)
    return declared() if callable(declared) else {"network": engine.network, "optimizer": engine.optimizer}


def _present(items: dict) -> dict:
    """``items`` without the entries that are None (a scheduler or a module that this run does not have)."""
    return {key: value for key, value in items.items() if value is not None}


def save_model(network: torch.nn.Module, path: str, run: RunIdentity | None = None) -> None:
    """``network``'s state dict at ``path``, written atomically, with the ``run_file`` of ``run``: a model file
    that the test takes as this run's."""
    _AtomicDiskSaver(os.path.dirname(path), os.path.basename(path), run)(network.state_dict(), os.path.basename(path))


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI's ``CheckpointSaver`` with atomic writes; ``interval_filename`` gives the interval checkpoint a
    fixed name (one file, replaced each time) and ``engine_key`` adds the state of the trainer it is attached
    to (epoch, iteration) under that key, and the modules and optimizers the trainer declares
    (``trainer_state``); entries of ``save_dict`` that are None are left out. Its ``state_dict`` holds the
    best key metric seen so far, so putting the saver in a resumable checkpoint keeps a resumed run from
    overwriting a better model. With ``run``, every checkpoint gets a ``run_file`` naming the run that wrote
    it."""

    def __init__(
        self, save_dir: str, save_dict: dict, interval_filename: str | None = None, engine_key: str | None = None,
        run: RunIdentity | None = None, **kwargs,
    ) -> None:
        super().__init__(save_dir=save_dir, save_dict=_present(save_dict), **kwargs)
        self.engine_key = engine_key
        for checkpoint in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if checkpoint is not None:
                saver = checkpoint.save_handler
                filename = interval_filename if checkpoint is self._interval_checkpoint else saver.filename
                checkpoint.save_handler = _AtomicDiskSaver(saver.dirname, filename, run)

    def attach(self, engine: Engine) -> None:
        if self.engine_key is not None:  # the trainer's modules as it starts (MONAI attaches in its constructor)
            self.save_dict[self.engine_key] = engine
            engine.add_event_handler(Events.STARTED, lambda trainer: self.save_dict.update(trainer_state(trainer)))
        super().attach(engine)

    def state_dict(self) -> dict:
        return self._key_metric_checkpoint.state_dict() if self._key_metric_checkpoint is not None else {}


def read_state_dict(path: str, option: str) -> dict:
    """The checkpoint at ``path`` (given as ``--option``), with errors that name the file: missing, a folder,
    empty or truncated."""
    if not os.path.isfile(path):
        what = "is a folder, not a checkpoint file" if os.path.isdir(path) else "does not exist"
        raise FileNotFoundError(f"--{option} {path} {what}.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"cannot read the checkpoint {path} (--{option}; {type(error).__name__}: {error}): it is empty, "
            "truncated or no PyTorch checkpoint."
        ) from error


def _shape_error(path: str, error: RuntimeError, fix: str) -> ValueError:
    """A state-dict mismatch as one line: the first differing key, and the settings that decide the shape."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = next((line for line in lines if "size mismatch" in line), lines[-1] if lines else str(error))
    return ValueError(
        f"{path} holds a network of another shape than this run builds ({detail[:300]}): {fix} with the "
        "settings it was trained with (num_classes, image_channels, network_def#channels, spatial_dims, "
        "shared_body)."
    )


def load_weights(network: torch.nn.Module, path: str, option: str) -> torch.nn.Module:
    """``network`` with the state dict at ``path`` (``--option``); errors name the file and the settings."""
    try:
        network.load_state_dict(read_state_dict(path, option))
    except RuntimeError as error:
        raise _shape_error(path, error, "build it") from error
    return network


class CheckedCheckpointLoader(CheckpointLoader):
    """MONAI's ``CheckpointLoader`` whose errors name the file (``option``: the setting that gave it) and, for
    a network of another shape, the settings that decide it."""

    fix = "load it"

    def __init__(self, load_path: str, load_dict: dict, option: str = "model_path", **kwargs) -> None:
        super().__init__(load_path=load_path, load_dict=dict(load_dict), **kwargs)
        self.option = option

    def __call__(self, engine: Engine) -> None:
        read_state_dict(self.load_path, self.option)
        try:
            super().__call__(engine)
        except RuntimeError as error:
            if "state_dict" not in str(error) and "size mismatch" not in str(error):
                raise
            raise _shape_error(self.load_path, error, self.fix) from error


class ResumeCheckpointLoader(CheckedCheckpointLoader):
    """A ``CheckedCheckpointLoader`` that acts only when ``enabled`` and the checkpoint exists; a stage whose
    checkpoint says it finished is then skipped, an interrupted one continues where it stopped.
    ``engine_key`` restores the state of the trainer it is attached to from that key, and the modules and
    optimizers it declares (``trainer_state``); entries of ``load_dict`` that are None are left out."""

    fix = "resume"

    def __init__(
        self, load_path: str, load_dict: dict, enabled: bool = True, engine_key: str | None = None, **kwargs
    ) -> None:
        super().__init__(load_path=load_path, load_dict=_present(load_dict), option="resume", **kwargs)
        self.enabled = enabled
        self.engine_key = engine_key

    def attach(self, engine: Engine) -> None:
        if self.engine_key is not None:
            self.load_dict[self.engine_key] = engine
        if self.enabled and os.path.isfile(self.load_path):
            super().attach(engine)
        elif self.enabled:
            logger.info(f"nothing to resume: {self.load_path} does not exist, starting afresh.")

    def __call__(self, engine: Engine) -> None:
        """Resume; a learning rate that differs from the checkpoint's is reported, and the checkpoint's is kept
        (a resumed run is the same run)."""
        if self.engine_key is not None:  # the trainer's modules, now that it is built
            self.load_dict.update(trainer_state(engine))
        optimizers = {k: o for k, o in self.load_dict.items() if isinstance(o, torch.optim.Optimizer)}
        configured = {k: [g.get("initial_lr", g["lr"]) for g in o.param_groups] for k, o in optimizers.items()}
        super().__call__(engine)
        for key, optimizer in optimizers.items():
            resumed = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
            if resumed != configured[key]:
                logger.warning(
                    f"{self.load_path}: {key} resumes with the checkpoint's learning rate {resumed}, not the "
                    f"configured {configured[key]}; start afresh to train with another learning rate."
                )


def _read_run(checkpoint_path: str) -> dict | None:
    """The identity of the run that wrote a checkpoint, or None where no ``run_file`` says."""
    path = run_file(checkpoint_path)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


class ModelProvenance:
    """Before an evaluator runs, checks that the model file it is about to load exists and, with
    ``require_this_run``, that ``run`` wrote it (its ``run_file`` names ``run``): a run that never validated
    must not report an older model's score as its own."""

    def __init__(self, model_path: str, run: RunIdentity, require_this_run: bool = True) -> None:
        self.model_path = model_path
        self.run = run if require_this_run else None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        if not os.path.isfile(self.model_path):
            raise FileNotFoundError(f"no model to test: {self.model_path} does not exist (this run wrote none).")
        if self.run is None:
            return
        written_by = _read_run(self.model_path)
        if written_by != self.run.state_dict():
            raise RuntimeError(
                f"{self.model_path} was not written by this run (it names {written_by}, this run is "
                f"{self.run.state_dict()}): this run wrote no model, so there is nothing of its own to test."
            )


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
            raise FloatingPointError(
                f"{type(engine).__name__}: non-finite loss at iteration {engine.state.iteration} (epoch "
                f"{engine.state.epoch}): {', '.join(f'{k} = {v}' for k, v in broken.items())}. Training stopped; "
                "the checkpoints saved so far are kept. Check the data for NaN or infinite values, or lower "
                "--learning_rate."
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
            report["model"] = {"path": os.path.abspath(self.model_path), "run": _read_run(self.model_path)}
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
