"""Checkpoints that name the run that wrote them: atomic writes, resuming with checked learning rates, loading
with errors that name the file and the settings, and the check that a tested model is this run's own."""

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

import torch
from ignite.engine import Engine, Events
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.handlers import CheckpointLoader, CheckpointSaver

from .atomic import atomic_json_dump, atomic_torch_save
from .distributed import is_distributed, is_main_process
from .flags import as_bool

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
        self.enabled = as_bool(enabled)
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


def read_run(checkpoint_path: str) -> dict | None:
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
        self.run = run if as_bool(require_this_run) else None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        if not os.path.isfile(self.model_path):
            raise FileNotFoundError(f"no model to test: {self.model_path} does not exist (this run wrote none).")
        if self.run is None:
            return
        written_by = read_run(self.model_path)
        if written_by != self.run.state_dict():
            raise RuntimeError(
                f"{self.model_path} was not written by this run (it names {written_by}, this run is "
                f"{self.run.state_dict()}): this run wrote no model, so there is nothing of its own to test."
            )
