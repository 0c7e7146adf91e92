"""The overlays after train.yaml that configure each method, as the experiment presets give them."""

from __future__ import annotations

SEMI_SUPERVISED = ("em", "cps", "uamt", "cct", "urpc", "bcp")


def method_overlays(baseline: str | None) -> list[str]:
    """Config files (relative to bundle/configs) of a baseline; none for ours (``None``)."""
    if baseline is None:
        return []
    if baseline == "supervised":
        return ["baselines/supervised.yaml"]
    if baseline in SEMI_SUPERVISED:
        return ["baselines/semi_supervised.yaml", f"baselines/{baseline}.yaml"]
    raise ValueError(f"unknown baseline {baseline!r}: supervised or one of {SEMI_SUPERVISED}")
