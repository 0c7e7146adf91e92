"""Mixed precision where the device runs it natively: float16 autocast (with MONAI's GradScaler in training) on
CUDA, bfloat16 autocast on a CPU with bfloat16 instructions (AVX512-BF16 or AMX). Elsewhere bfloat16 is
emulated, slower than float32, so the run stays in float32 and says so."""

from __future__ import annotations

import logging

import torch

from .flags import as_bool

logger = logging.getLogger(__name__)


def native_bfloat16_cpu() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX tiles)."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def mixed_precision(requested: bool | str, device: torch.device | str) -> bool:
    """``requested`` (a boolean setting, ``--amp``) where ``device`` runs mixed precision natively; ``False``,
    with a warning, where it was requested but the device would emulate it."""
    if not as_bool(requested):
        return False
    device = torch.device(device)
    if device.type == "cuda" or (device.type == "cpu" and native_bfloat16_cpu()):
        return True
    where = "this CPU has no bfloat16 instructions (AVX512-BF16 or AMX)" if device.type == "cpu" else \
        f"mixed precision on {device.type} is not supported here"
    logger.warning(f"amp: {where}; training and inference run in float32.")
    return False
