"""What the bundle's command-line tools share: the bundle folder and ``KEY=VALUE`` arguments."""

from __future__ import annotations

import argparse
import os

BUNDLE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def key_value(text: str) -> tuple[str, str]:
    """``("name", "value")`` from ``"name=value"`` (argparse ``type``)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key, value
