"""Command-line overrides that name no config id are mistakes: ``--label_fracton 50`` must not train at the
default label fraction."""

from __future__ import annotations

import ast
import difflib
import sys
from collections.abc import Sequence

from monai.bundle import ConfigParser

# the options of ``python -m monai.bundle run`` itself, which are not config ids
RUN_OPTIONS = {"run_id", "init_id", "final_id", "meta_file", "config_file", "logging_file", "tracking", "args_file"}


def command_line_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """The config files and the override ids of a ``monai.bundle run`` command line (``--id value`` or
    ``--id=value``), including the ids of an ``--args_file``."""
    options: dict[str, str] = {}
    tokens = list(argv)
    for i, token in enumerate(tokens):
        if token.startswith("--"):
            key, _, value = token[2:].partition("=")
            options[key] = value if "=" in token else (tokens[i + 1] if i + 1 < len(tokens) else "")
    files = options.get("config_file", "")
    try:
        files = ast.literal_eval(files)
    except (ValueError, SyntaxError):
        files = files.split(",") if files else []
    ids = [key for key in options if key not in RUN_OPTIONS]
    if "args_file" in options:
        arguments = ConfigParser.load_config_file(options["args_file"])
        files = arguments.get("config_file", files)
        ids += [key for key in arguments if key not in RUN_OPTIONS]
    return ([files] if isinstance(files, str) else list(files)), ids


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


def check_overrides(argv: Sequence[str] | None = None) -> None:
    """Raise ``ValueError`` for an override whose id the run's config files do not have, naming the nearest
    id. An override may add an argument to a component (its parent id is a dict with ``_target_``)."""
    files, overrides = command_line_overrides(sys.argv[1:] if argv is None else argv)
    if not files:
        return
    parser = ConfigParser()
    parser.read_config(files)
    known = config_ids(parser.get())
    for key in overrides:
        parent = key.rpartition("#")[0]
        if key in known or (parent in known and isinstance(parser[parent], dict) and "_target_" in parser[parent]):
            continue
        nearest = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean --{nearest[0]}?" if nearest else ""
        raise ValueError(f"--{key}: no config id '{key}' in {', '.join(map(str, files))}{hint}")


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
