"""The training compute of a run, so that a result can be set beside what it cost: torch's ``FlopCounterMode``
counts the floating-point operations (a multiply-add is 2) of a stage's first iteration in this process, the
forward and backward passes of every network it runs, and the stage's total is that count times its
iterations in all processes. Recorded by stage in ``<ckpt_dir>/training_flops.json``."""

from __future__ import annotations

import json
import os

from ignite.engine import Engine, Events
from torch.utils.flop_counter import FlopCounterMode

from .atomic import atomic_json_dump


class TrainingFlops:
    """Counts one iteration of the engine it is attached to and records ``{stage: {flops_per_iteration,
    iterations, flops}}`` at ``path`` (other stages' entries kept)."""

    def __init__(self, path: str, stage: str, num_processes: int = 1) -> None:
        self.path = path
        self.stage = stage
        self.num_processes = num_processes
        self.counter: FlopCounterMode | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_STARTED, self.start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.record)
        engine.add_event_handler(Events.EXCEPTION_RAISED, self.stop)

    def start(self, engine: Engine) -> None:
        self.counter = FlopCounterMode(display=False)
        self.counter.__enter__()
        engine.remove_event_handler(self.start, Events.ITERATION_STARTED)

    def stop(self, engine: Engine, *_) -> None:
        if self.counter is not None:
            self.counter.__exit__(None, None, None)
        engine.remove_event_handler(self.stop, Events.EXCEPTION_RAISED)

    def record(self, engine: Engine) -> None:
        self.stop(engine)
        engine.remove_event_handler(self.record, Events.ITERATION_COMPLETED)
        per_iteration = self.counter.get_total_flops()
        iterations = engine.state.max_epochs * engine.state.epoch_length * self.num_processes
        recorded = {}
        if os.path.isfile(self.path):
            with open(self.path) as f:
                recorded = json.load(f)
        recorded[self.stage] = {"flops_per_iteration": per_iteration, "iterations": iterations,
                                "flops": per_iteration * iterations}
        atomic_json_dump(recorded, self.path)


def total_flops(path: str) -> float | None:
    """The training operations of every stage recorded at ``path``, or None without a record."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return float(sum(stage["flops"] for stage in json.load(f).values()))
