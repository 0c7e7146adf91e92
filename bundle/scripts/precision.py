"""Mixed precision where the device runs it natively: float16 autocast (with MONAI's GradScaler in training) on
CUDA, bfloat16 autocast on a CPU with bfloat16 instructions (AVX512-BF16 or AMX). Elsewhere bfloat16 is
emulated, slower than float32, so the run stays in float32 and says so."""

from __future__ import annotations

import logging
import platform

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


def cpu_name() -> str:
    """The CPU's model name as the system reports it (``/proc/cpuinfo`` on Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "an unnamed CPU"


def mixed_precision_advice(amp: bool, device: torch.device | str) -> str:
    """For an error about non-finite values: where the step ran in mixed precision, that precision, the
    hardware, and how to train in float32 instead; nothing in float32."""
    if not amp:
        return ""
    device = torch.device(device)
    if device.type == "cuda":
        where = f"float16 autocast on {torch.cuda.get_device_name(device)}"
    else:
        amx = "with" if torch.cpu._is_amx_tile_supported() else "without"
        where = f"bfloat16 autocast on {cpu_name()} ({amx} AMX tiles)"
    return f" The step ran in {where}: rerun with --amp false to train in float32."
