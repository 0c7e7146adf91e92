"""``progress.png``: a training run's loss terms, lambda and validation scores by epoch, redrawn every epoch."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from ignite.engine import Engine, Events  # noqa: E402

from .atomic import atomic_json_dump, atomic_write  # noqa: E402


class ProgressFigure:
    """Averages ``output_transform(engine.state.output)`` (a dict of scalars: ``loss/...``, ``lambda``,
    ``lr/...``) over each epoch, takes the ``validator``'s metrics after each validation, and draws them by
    epoch into ``path`` (atomically): losses on a log scale, lambda, validation scores. The curves are also
    written beside it (``.json``); a ``resume``d run reads them back and draws them from its first epoch."""

    def __init__(
        self, path: str, output_transform: Callable[[dict], dict], validator: Engine | None = None,
        resume: bool = False,
    ) -> None:
        self.path = path
        self.output_transform = output_transform
        self.validator = validator
        self.history: dict[str, dict[int, float]] = defaultdict(dict)
        if resume and os.path.isfile(self.history_path):
            with open(self.history_path) as f:
                self.history.update({name: {int(e): v for e, v in curve.items()} for name, curve in json.load(f).items()})
        self._sums: dict[str, float] = defaultdict(float)
        self._count = 0

    @property
    def history_path(self) -> str:
        return os.path.splitext(self.path)[0] + ".json"

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._accumulate)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)
        if self.validator is not None:
            self.validator.add_event_handler(Events.COMPLETED, self._validated, engine)

    def _accumulate(self, engine: Engine) -> None:
        for name, value in self.output_transform(engine.state.output).items():
            self._sums[name] += float(value)
        self._count += 1

    def _epoch_completed(self, engine: Engine) -> None:
        for name, total in self._sums.items():
            self.history[name][engine.state.epoch] = total / self._count
        self._sums, self._count = defaultdict(float), 0
        atomic_json_dump(self.history, self.history_path)
        atomic_write(self.path, self._draw)

    def _validated(self, validator: Engine, trainer: Engine) -> None:
        for name, value in validator.state.metrics.items():
            self.history[name][trainer.state.epoch] = float(value)

    def _draw(self, path: str) -> None:
        panels = {
            "loss (log scale)": [n for n in self.history if n.startswith("loss/")],
            "lambda": [n for n in self.history if n == "lambda"],
            "validation": [n for n in self.history if n.startswith("val_")],
        }
        panels = {title: names for title, names in panels.items() if names}
        figure, axes = plt.subplots(len(panels), 1, figsize=(7, 2.6 * len(panels)), sharex=True, squeeze=False)
        for axis, (title, names) in zip(axes[:, 0], panels.items()):
            for name in sorted(names):
                epochs = sorted(self.history[name])
                axis.plot(epochs, [self.history[name][e] for e in epochs], marker="." if len(epochs) < 30 else None,
                          label=name)
            if title.startswith("loss") and all(v > 0 for n in names for v in self.history[n].values()):
                axis.set_yscale("log")
            axis.set_title(title, fontsize=10)
            axis.legend(fontsize=7, loc="best")
            axis.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("epoch")
        figure.tight_layout()
        figure.savefig(path, format="png", dpi=100)
        plt.close(figure)
