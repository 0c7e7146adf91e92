"""What the main process logs, draws and writes while a training stage runs: one object per stage, so that a
config names what differs between stages (files, figures, columns) and not eight handlers each time."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from ignite.engine import Engine
from monai.handlers import StatsHandler, TensorBoardStatsHandler

from .compute import TrainingFlops
from .flags import as_bool
from .checkpoints import AtomicCheckpointSaver
from .handlers import ProgressBar, SegmentationSnapshot
from .progress import ProgressFigure
from .stages import StateDictSaver


def scalars_of(output: dict) -> dict:
    """The scalars of an iteration's output (loss terms, lambda, learning rates), as the trainers return them."""
    return output["scalars"]


class StageMonitoring:
    """The main process's handlers of one training stage, attached in this order:

    - the FLOPs of one iteration, in ``<ckpt_dir>/training_flops.json`` under ``stage``;
    - the loss in the log every ``log_interval`` iterations, as ``<stage>_loss``;
    - the ``scalars`` of each iteration in TensorBoard;
    - the last batch drawn every ``snapshot_interval`` epochs, ``<output_dir>/figures/<snapshot_prefix>_epoch_N.png``;
    - the progress figure by epoch, ``<output_dir>/figures/<progress_figure>``, with the ``validator``'s metrics;
    - the resumable checkpoint after every epoch, ``<ckpt_dir>/<stage>_state.pt``: the trainer's networks and
      optimizers, and ``state``;
    - the networks of ``result_files`` as plain state dicts in ``ckpt_dir`` as the stage ends (what it hands over);
    - a progress bar.

    Nothing is made in other processes (``main_process`` false): a TensorBoard handler made there would
    already write a file.

    Args:
        stage: the stage's name (``pretrain``, ``train``): of its checkpoint, loss and FLOPs entry.
        ckpt_dir, output_dir: the run's folders for models and checkpoints, and for figures.
        summary_writer: the stage's TensorBoard writer.
        state: what the checkpoint holds beside the trainer's networks and optimizers.
        snapshot_prefix, snapshot_columns, snapshot_interval: the snapshot's file prefix, its columns (title:
            output key) and the epochs between snapshots.
        progress_figure: the progress figure's file name.
        scalars: the scalars of an iteration's output.
        validator: the evaluator whose metrics the progress figure adds after each validation.
        result_files: file name: network, written as the stage ends.
        resume: whether the run resumes an interrupted one (the progress figure reads its curves back).
        log_interval, num_processes, main_process: the run's.
    """

    def __init__(
        self,
        stage: str,
        ckpt_dir: str,
        output_dir: str,
        summary_writer,
        state: dict,
        snapshot_prefix: str,
        snapshot_columns: dict[str, str],
        progress_figure: str,
        snapshot_interval: int = 1,
        scalars: Callable[[dict], dict] = scalars_of,
        validator: Engine | None = None,
        result_files: dict[str, torch.nn.Module] | None = None,
        resume: bool | str = False,
        log_interval: int = 20,
        num_processes: int = 1,
        main_process: bool = True,
    ) -> None:
        self.stage = stage
        self.ckpt_dir = ckpt_dir
        self.figures_dir = os.path.join(output_dir, "figures")
        self.summary_writer = summary_writer
        self.state = state
        self.snapshot_prefix = snapshot_prefix
        self.snapshot_columns = snapshot_columns
        self.snapshot_interval = snapshot_interval
        self.progress_figure = progress_figure
        self.scalars = scalars
        self.validator = validator
        self.result_files = result_files or {}
        self.resume = as_bool(resume)
        self.log_interval = log_interval
        self.num_processes = num_processes
        self.main_process = main_process

    def handlers(self) -> list:
        """The handlers, made now (in the main process only)."""
        return [
            TrainingFlops(os.path.join(self.ckpt_dir, "training_flops.json"), self.stage, self.num_processes),
            StatsHandler(
                tag_name=f"{self.stage}_loss",
                iteration_log=lambda engine, _: engine.state.iteration % self.log_interval == 0,
                output_transform=lambda output: output["loss"].item(),
            ),
            TensorBoardStatsHandler(summary_writer=self.summary_writer, output_transform=self.scalars),
            SegmentationSnapshot(self.figures_dir, self.snapshot_columns, self.snapshot_prefix, self.snapshot_interval,
                                 summary_writer=self.summary_writer),
            ProgressFigure(os.path.join(self.figures_dir, self.progress_figure), self.scalars, self.validator,
                           resume=self.resume),
            AtomicCheckpointSaver(self.ckpt_dir, self.state, interval_filename=f"{self.stage}_state.pt",
                                  engine_key="trainer", save_interval=1),
            StateDictSaver(self.ckpt_dir, self.result_files),
            ProgressBar(),
        ]

    def attach(self, engine: Engine) -> None:
        if self.main_process:
            for handler in self.handlers():
                handler.attach(engine)
