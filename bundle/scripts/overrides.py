"""Command-line overrides that are mistakes: an id that the config lacks (``--label_fracton 50`` must not train
at the default label fraction), and a value of a documented option of the wrong type or out of range
(``--batch_size 0``), each refused before any work with the option named."""

from __future__ import annotations

import ast
import difflib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from monai.bundle import ConfigParser

# the options of ``python -m monai.bundle run`` itself, which are not config ids
RUN_OPTIONS = {"run_id", "init_id", "final_id", "meta_file", "config_file", "logging_file", "tracking", "args_file"}


def _integer(minimum: int, optional: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return None
        return f"an integer of at least {minimum}" + (" (or null)" if optional else "")
    return check


def _number(minimum: float, inclusive: bool = True) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (
                value >= minimum if inclusive else value > minimum):
            return None
        return f"a number {'of at least' if inclusive else 'above'} {minimum:g}"
    return check


def _percentage(value: Any) -> str | None:
    try:
        number = float(str(value).strip().rstrip("%"))
    except ValueError:
        number = None
    return None if number is not None and 0 < number <= 100 else "a percentage in (0, 100], such as 5"


def _sizes(value: Any) -> str | None:
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value):
        return None
    return "a list of positive sizes, such as [128,128]"


# the documented options whose values are checked: what each must be
OPTION_RULES: dict[str, Callable[[Any], str | None]] = {
    "max_epochs": _integer(1), "pretrain_epochs": _integer(0), "epoch_length": _integer(1, optional=True),
    "batch_size": _integer(1), "labeled_batch_size": _integer(1), "val_interval": _integer(1),
    "log_interval": _integer(1), "num_workers": _integer(0), "rounds": _integer(0), "num_classes": _integer(2),
    "image_channels": _integer(1), "split_seed": _integer(0),
    "num_labeled": _integer(1, optional=True), "inference_draws": _integer(1), "learning_rate": _number(0, False),
    "weight_decay": _number(0), "lambda_max": _number(0), "label_fraction": _percentage,
    "datastore_label_fraction": _percentage, "spatial_size": _sizes, "patch_size": _sizes, "spacing": _sizes,
}


def _parsed(text: str) -> Any:
    """A command-line value as the bundle receives it: a Python literal where it is one, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return {"null": None, "none": None}.get(text.strip().lower(), text)


def check_option_values(values: dict[str, Any]) -> None:
    """Raise ``ValueError`` for the first value in ``values`` that its ``OPTION_RULES`` rule refuses."""
    for key, value in values.items():
        if key not in OPTION_RULES or (isinstance(value, str) and value.startswith(("$", "@", "%"))):
            continue   # not checked, or a config expression or reference
        expected = OPTION_RULES[key](value)
        if expected:
            raise ValueError(f"--{key} {value!r}: expected {expected}.")


def _options(argv: Sequence[str]) -> dict[str, str]:
    """The ``--key value`` and ``--key=value`` options of a command line, as text."""
    options: dict[str, str] = {}
    tokens = list(argv)
    for i, token in enumerate(tokens):
        if token.startswith("--"):
            key, _, value = token[2:].partition("=")
            options[key] = value if "=" in token else (tokens[i + 1] if i + 1 < len(tokens) else "")
    return options


def command_line_values(argv: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """The config files and the override values by id of a ``monai.bundle run`` command line (``--id value``
    or ``--id=value``), including those of an ``--args_file``."""
    options = _options(argv)
    files = options.get("config_file", "")
    try:
        files = ast.literal_eval(files)
    except (ValueError, SyntaxError):
        files = files.split(",") if files else []
    values = {key: _parsed(value) for key, value in options.items() if key not in RUN_OPTIONS}
    if "args_file" in options:
        arguments = ConfigParser.load_config_file(options["args_file"])
        files = arguments.get("config_file", files)
        values.update({key: value for key, value in arguments.items() if key not in RUN_OPTIONS})
    return ([files] if isinstance(files, str) else list(files)), values


def config_ids(config: dict | list, prefix: str = "") -> list[str]:
    """Every id of a config, nested ones joined with ``#``."""
    items = config.items() if isinstance(config, dict) else enumerate(config)
    ids = []
    for key, value in items:
        name = f"{prefix}{key}"
        ids.append(name)
        if isinstance(value, (dict, list)):
            ids += config_ids(value, name + "#")
    return ids


def tracking_ids(argv: Sequence[str]) -> list[str]:
    """The top-level ids that ``--tracking <settings file>`` adds to the config (the file's ``configs``); MONAI's
    built-in ``--tracking mlflow`` is refused: its handlers read a loss that the bundle's trainers do not output."""
    tracking = _options(argv).get("tracking")
    if not tracking:
        return []
    if not os.path.isfile(tracking):
        settings = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "mlflow.yaml")
        raise ValueError(
            f"--tracking {tracking}: give the bundle's tracking settings file, --tracking {settings} (MONAI's "
            "default MLflow handlers read a total loss that this bundle's trainers do not output)."
        )
    return list(ConfigParser.load_config_file(tracking).get("configs", {}))


def check_overrides(argv: Sequence[str] | None = None) -> None:
    """Raise ``ValueError`` for an override whose id the run's config files (and ``--tracking`` settings file)
    do not have, naming the nearest id (an override may add an argument to a component: its parent id is a
    dict with ``_target_``), or whose value ``check_option_values`` refuses."""
    argv = sys.argv[1:] if argv is None else argv
    files, values = command_line_values(argv)
    if not files:
        return
    overrides = list(values)
    parser = ConfigParser()
    parser.read_config(files)
    known = config_ids(parser.get()) + tracking_ids(argv)
    for key in overrides:
        parent = key.rpartition("#")[0]
        if key in known or (parent in known and isinstance(parser[parent], dict) and "_target_" in parser[parent]):
            continue
        nearest = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean --{nearest[0]}?" if nearest else ""
        raise ValueError(f"--{key}: no config id '{key}' in {', '.join(map(str, files))}{hint}")
    check_option_values(values)


def check_panel_settings(shown: dict, applied: dict) -> None:
    """Raise ``ValueError`` when a setting that MONAI Label's train panel set (``shown``: the bundle's
    ``displayable_configs`` and the trainer's ``max_epochs``) differs from the id the run uses (``applied``)."""
    ignored = {key: value for key, value in shown.items() if value != applied[key]}
    if ignored:
        raise ValueError(
            f"settings {ignored} reached the bundle's displayable_configs (or the trainer) but not the ids it trains "
            f"with ({ {key: applied[key] for key in ignored} }): serve the bundle with its own MONAI Label app "
            "(python -m scripts.label_server), which applies them."
        )
