"""The settings that define a run (data, split, label fraction, seed, network, method, batch sizes), recorded in
the model folder when the run starts, so that a resumed run cannot silently become another experiment."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from .atomic import atomic_json_dump
from .flags import as_bool

logger = logging.getLogger(__name__)


class RunSettingsRecord:
    """``check()`` (first in a run, before the data are prepared): with ``compare``, refuses settings that
    differ from those recorded at ``path``, naming each with its recorded and its new value. ``save()`` (once
    the data are checked): with ``write``, records ``settings`` at ``path`` (atomically)."""

    def __init__(self, path: str, settings: dict[str, Any], compare: bool, write: bool = True) -> None:
        self.path = path
        self.settings = json.loads(json.dumps(settings))   # as read back: tuples become lists
        self.compare = as_bool(compare)
        self.write = write

    def differences(self) -> dict[str, tuple[Any, Any]]:
        """Each recorded setting whose value this run changes: ``{name: (recorded, now)}``."""
        with open(self.path) as f:
            recorded = json.load(f)
        names = sorted(set(recorded) | set(self.settings))
        missing = "(not recorded)"
        return {name: (recorded.get(name, missing), self.settings.get(name, missing)) for name in names
                if recorded.get(name, missing) != self.settings.get(name, missing)}

    def check(self) -> None:
        if self.compare and os.path.isfile(self.path):
            changed = self.differences()
            if changed:
                listed = "; ".join(f"{name} {old!r} (now {new!r})" for name, (old, new) in changed.items())
                raise ValueError(
                    f"cannot resume the run in {os.path.dirname(self.path)}: it was started with other settings "
                    f"({self.path}): {listed}. Resume with the recorded settings, or start afresh without "
                    "--resume or with another --ckpt_dir and --output_dir."
                )
        elif self.compare:
            logger.warning(f"{self.path} does not exist: no settings of an earlier run to check this resumed run against.")

    def save(self) -> None:
        if self.write:
            atomic_json_dump(self.settings, self.path)
