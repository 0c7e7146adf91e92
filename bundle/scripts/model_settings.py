"""The settings a model was trained with, recorded beside its weights (``model_settings.json``, as nnU-Net keeps
``plans.json`` beside its checkpoints): its network, classes, channels, size or spacing and patch, preprocessing
and saved mask values. Inference serves the model with them, and refuses an option or overlay that differs."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from monai.transforms import Compose

from .cli import BUNDLE_ROOT
from .overrides import command_line_values

logger = logging.getLogger(__name__)

SETTINGS_FILE = "model_settings.json"
SERVED_ONLY = ("mask_values", "class_names", "overlays")   # recorded, but an option may change them at inference


def settings_path(model_path: str) -> str:
    """The settings file of the model folder that holds ``model_path``."""
    return os.path.join(os.path.dirname(os.path.abspath(model_path)), SETTINGS_FILE)


def preprocessing_steps(transforms: Compose) -> list[str]:
    """The names of the transforms that act on the image, in order: what serving the model must repeat."""
    return [type(t).__name__ for t in transforms.transforms if "image" in getattr(t, "keys", ())]


def config_overlays(argv: list[str] | None = None) -> list[str]:
    """The config files of this run's command line, relative to the bundle folder where they lie in it."""
    files, _ = command_line_values(sys.argv[1:] if argv is None else argv)
    paths = [os.path.abspath(f) for f in files]
    return [os.path.relpath(p, BUNDLE_ROOT) if p.startswith(BUNDLE_ROOT + os.sep) else p for p in paths]


def read_model_settings(model_path: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """The settings recorded beside ``model_path``, or ``defaults`` (with a warning) for a model without them."""
    path = settings_path(model_path)
    if not os.path.isfile(path):
        logger.warning(f"{path} not found: {model_path} is served with the settings of the configs given.")
        return defaults
    try:
        with open(path) as f:
            recorded = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path} ({error}): the settings {model_path} was trained with.") from None
    missing = sorted(set(defaults) - set(recorded))
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: write it again by training, or remove it to serve "
                         f"{model_path} with the settings of the configs given.")
    return recorded


def check_served_settings(model_path: str, served: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming each setting that an option or overlay of this run sets otherwise than the
    model's record (nothing to check for a model without one)."""
    path = settings_path(model_path)
    if not os.path.isfile(path):
        return
    with open(path) as f:
        recorded = json.load(f)
    served = json.loads(json.dumps(served))   # as read back: tuples become lists
    differ = {k: (recorded[k], v) for k, v in served.items() if k in recorded and k not in SERVED_ONLY
              and recorded[k] != v}
    if differ:
        listed = "; ".join(f"{name} {old!r} (here {new!r})" for name, (old, new) in differ.items())
        overlays = ", ".join(recorded.get("overlays") or []) or "no overlay"
        raise ValueError(
            f"{model_path} was trained with other settings than this run serves it with ({path}): {listed}. "
            f"Leave these options out (they are read from the model folder) and give the overlays it was "
            f"trained with ({overlays})."
        )
