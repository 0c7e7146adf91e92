"""Boolean settings from the command line: ``--resume true`` reaches the config as the string 'true'."""

from __future__ import annotations

from typing import Any

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", "none", "null", ""}


def as_bool(value: Any) -> bool:
    """``True``/``False``, or their usual spellings as strings (any case); anything else is an error."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected a boolean (true or false), got {value!r}.")
