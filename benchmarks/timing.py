"""Timing shared by the benchmarks."""

from __future__ import annotations

import time

import torch
from ignite.engine import Engine


def seconds_per_iteration(trainer: Engine, iterations: int) -> float:
    """Mean seconds of ``iterations`` more iterations of a trainer that has already run once (its warm-up).
    A finished ignite engine would restart with a full pass over its data, so its counters are rewound."""
    trainer.state.epoch = trainer.state.iteration = 0
    trainer.state.epoch_length = iterations
    start = time.perf_counter()
    trainer.run()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / trainer.state.iteration
