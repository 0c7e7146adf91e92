"""The stages of a run and how they hand over through files: a finished stage leaves plain state dicts for a later
stage or run (``models/teacher.pt`` after stage 1), a stage whose result is given as such a file, or that is not
wanted, ends as it starts, and the test runs where the dataset has a test split."""

from __future__ import annotations

import logging
import os

import torch
from ignite.engine import Engine, Events
from monai.engines import Evaluator

from .atomic import atomic_torch_save
from .checkpoints import RunIdentity, load_weights, save_model
from .flags import as_bool

logger = logging.getLogger(__name__)


class StageFromFile:
    """Ends the stage it is attached to as it starts, without training and without its completion handlers, where
    its result is given: ``load_path``, a state dict for ``network`` that must exist (errors name ``--option``),
    else ``reuse_path`` where that file exists (a retrain starting from its own earlier result); with neither,
    the stage trains, unless ``train`` is false (``network`` then stays as built)."""

    def __init__(
        self, network: torch.nn.Module, load_path: str | None = None, reuse_path: str | None = None,
        train: bool = True, option: str = "teacher_checkpoint",
    ) -> None:
        self.network = network
        self.load_path = load_path
        self.reuse_path = reuse_path
        self.train = as_bool(train)
        self.option = option

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        path = self.load_path or (self.reuse_path if self.reuse_path and os.path.isfile(self.reuse_path) else None)
        if path:
            load_weights(self.network, path, self.option)
            logger.info(f"{type(engine).__name__} skipped: its network is loaded from {path}.")
        elif self.train:
            return
        else:
            logger.info(f"{type(engine).__name__} skipped: the next stage starts from a network as built.")
        engine.terminate(skip_completed=True)


class StateDictSaver:
    """When the engine completes, writes each network's state dict to ``<save_dir>/<file name>`` (atomically):
    what a stage hands over, as plain state dicts that ``load_weights`` reads."""

    def __init__(self, save_dir: str, networks: dict[str, torch.nn.Module]) -> None:
        self.save_dir = save_dir
        self.networks = networks

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        for name, network in self.networks.items():
            atomic_torch_save(network.state_dict(), os.path.join(self.save_dir, name))


class ModelWriting:
    """A stage that trains nothing: it writes ``network`` as the run's model (``save_model``), so that the test
    scores a reference such as a constant prediction as it scores a trained model."""

    def __init__(self, network: torch.nn.Module, path: str, run_identity: RunIdentity | None = None) -> None:
        self.network = network
        self.path = path
        self.run_identity = run_identity

    def run(self) -> None:
        save_model(self.network, self.path, self.run_identity)


class Evaluation:
    """A stage that runs ``evaluator`` over its split; where the split is empty (a dataset without a test split)
    it says so and writes nothing. The split is counted whole, not per process, so all processes agree."""

    def __init__(self, evaluator: Evaluator, split: str = "test") -> None:
        self.evaluator = evaluator
        self.split = split

    def run(self) -> None:
        if len(self.evaluator.data_loader.dataset) == 0:
            logger.info(f"no {self.split} split: nothing to evaluate.")
            return
        self.evaluator.run()


def report_outputs(ckpt_dir: str, output_dir: str) -> None:
    """Prints where the run's results are, naming only the files and folders that exist."""
    places = {
        "model": os.path.join(ckpt_dir, "model.pt"), "teacher": os.path.join(ckpt_dir, "teacher.pt"),
        "test report": os.path.join(ckpt_dir, "test_metrics.json"), "figures": os.path.join(output_dir, "figures"),
        "TensorBoard": os.path.join(output_dir, "tensorboard"),
    }
    print("outputs: " + ", ".join(f"{name} {path}" for name, path in places.items() if os.path.exists(path)))
