"""Fixtures shared by the test files (helpers they import are in helpers.py)."""

import pytest
from monai.networks.schedulers import DDPMScheduler


@pytest.fixture
def scheduler():
    return DDPMScheduler(num_train_timesteps=1000, schedule="linear_beta", beta_start=1e-4, beta_end=0.02)
