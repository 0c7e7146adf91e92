"""How the training stages hand over through files: a finished stage leaves plain state dicts for a later stage
or run (``models/teacher.pt`` after stage 1), and a stage whose result is given as such a file, or that is not
wanted, ends as it starts."""

from __future__ import annotations

import logging
import os

import torch
from ignite.engine import Engine, Events

from .atomic import atomic_torch_save
from .handlers import load_weights

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
        self.train = train
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
