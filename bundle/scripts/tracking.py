"""One MLflow run for a whole training (``--tracking mlflow``, MONAI's bundle option): stage 1, co-training,
validation and the test log into the run named ``run_name``, which the test ends.

MONAI's option also adds to ``train#handlers`` an ``MLFlowHandler`` that reads the total loss from a decollated
batch (``from_engine(['loss'], first=True)``) and ends the run with co-training. The bundle's trainers output
one dict of scalars, so its own ``RunTracker`` takes that handler's place and logs every loss term."""

from __future__ import annotations

from collections.abc import Sequence

from monai.handlers import MLFlowHandler


class RunTracker(MLFlowHandler):
    """MONAI's ``MLFlowHandler``, as the bundle configures it (``train.yaml``)."""


def without_default_tracker(handlers: Sequence) -> list:
    """``handlers`` less the ``MLFlowHandler``s that are not a ``RunTracker`` (MONAI's default one)."""
    return [h for h in handlers if not isinstance(h, MLFlowHandler) or isinstance(h, RunTracker)]
