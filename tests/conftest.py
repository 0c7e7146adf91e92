"""Fixtures shared by the test files (helpers they import are in helpers.py), and the thread count of
parallel test workers."""

import os

import pytest
import torch
from monai.networks.schedulers import DDPMScheduler

if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    # each of the workers (setup.cfg: -n auto) and the runs it starts gets its share of the cores: more
    # threads than cores slow every process down several times
    threads = max(1, len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def pytest_report_header(config):
    """The CPU and whether training runs in bfloat16 on it (amp's default there), for reading a run's log."""
    from scripts.precision import cpu_name

    return (f"cpu: {cpu_name()}; AVX512-BF16: {torch.cpu._is_avx512_bf16_supported()}, AMX tiles: "
            f"{torch.cpu._is_amx_tile_supported()}; torch {torch.__version__}")


@pytest.fixture
def scheduler():
    return DDPMScheduler(num_train_timesteps=1000, schedule="linear_beta", beta_start=1e-4, beta_end=0.02)
