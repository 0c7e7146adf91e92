"""Inference with the mask pathway: one or several noise draws at a fixed (or random) time step."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.inferers import Inferer, SlidingWindowInferer
from monai.networks.schedulers import DDPMScheduler

from .diffusion import mask_from_noise, pure_noise, sample_timesteps
from .networks import unwrap


class MaskPathwayInferer(Inferer):
    """Segments with the mask pathway ``f_m(i, v_m, t)`` from a pure-noise mask at a fixed ``timestep``
    (``"random"``: a time step drawn per image and draw, as the authors' code infers).

    Returns class probabilities: the softmax averaged over ``num_draws`` noise draws. The draws come from
    a generator seeded with ``seed`` at every call, so the same input always gives the same output.
    With ``roi_size`` the image is processed by MONAI's sliding window (``overlap`` 0.5 by default);
    each window batch gets its own time step tensor, so the last, smaller batch is handled too. With
    ``amp`` the network runs under autocast on the input's device (bfloat16 on the CPU, float16 on CUDA).
    """

    def __init__(
        self,
        noise_scheduler: DDPMScheduler,
        timestep: int | str = 0,
        num_draws: int = 1,
        seed: int = 0,
        roi_size: Sequence[int] | None = None,
        overlap: float = 0.5,
        sw_batch_size: int = 4,
        mode: str = "gaussian",
        amp: bool = False,
    ) -> None:
        super().__init__()
        if timestep != "random" and not (
            isinstance(timestep, int) and 0 <= timestep < noise_scheduler.num_train_timesteps
        ):
            raise ValueError(
                f"timestep must be 'random' or an integer in [0, {noise_scheduler.num_train_timesteps}), got {timestep!r}."
            )
        if num_draws < 1:
            raise ValueError(f"num_draws must be >= 1, got {num_draws}.")
        self.noise_scheduler = noise_scheduler
        self.timestep = timestep
        self.num_draws = num_draws
        self.seed = seed
        self.amp = amp
        self.sliding_window = (
            SlidingWindowInferer(roi_size=roi_size, sw_batch_size=sw_batch_size, overlap=overlap, mode=mode)
            if roi_size is not None
            else None
        )

    def __call__(self, inputs: torch.Tensor, network: torch.nn.Module, *args, **kwargs) -> torch.Tensor:
        generator = torch.Generator(device=inputs.device).manual_seed(self.seed)

        def predict(image: torch.Tensor) -> torch.Tensor:
            shape = (image.shape[0], unwrap(network).num_classes, *image.shape[2:])
            probabilities = 0
            for _ in range(self.num_draws):
                if self.timestep == "random":
                    timesteps = sample_timesteps(self.noise_scheduler, image.shape[0], image.device, generator)
                else:
                    timesteps = torch.full((image.shape[0],), self.timestep, dtype=torch.long, device=image.device)
                noise = pure_noise(self.noise_scheduler, shape, timesteps, image, generator)
                probabilities = probabilities + torch.softmax(network(image, noise, timesteps), dim=1)
            return probabilities / self.num_draws

        with torch.autocast(inputs.device.type, enabled=self.amp):
            if self.sliding_window is None:
                return predict(inputs)
            return self.sliding_window(inputs, predict)


class RandomTimestepInferer(Inferer):
    """Training forward of the mask pathway: class logits from a pure-noise mask at a random time step
    per sample, as the networks see it in co-training (used by the supervised baseline). With ``amp``
    under autocast on the input's device: MONAI's trainer autocasts on CUDA only."""

    def __init__(self, noise_scheduler: DDPMScheduler, amp: bool = False) -> None:
        super().__init__()
        self.noise_scheduler = noise_scheduler
        self.amp = amp

    def __call__(self, inputs: torch.Tensor, network: torch.nn.Module, *args, **kwargs) -> torch.Tensor:
        timesteps = sample_timesteps(self.noise_scheduler, inputs.shape[0], inputs.device)
        with torch.autocast(inputs.device.type, enabled=self.amp):
            return mask_from_noise(network, self.noise_scheduler, inputs, timesteps)
