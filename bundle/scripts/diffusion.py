"""Forward noising and its inverse (paper Eq. 1 and 3) on top of MONAI's ``DDPMScheduler``."""

from __future__ import annotations

import torch
from monai.networks.schedulers import DDPMScheduler


def _broadcast(values: torch.Tensor, timesteps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    out = values.to(like.device)[timesteps.to(like.device)].to(like.dtype)
    return out.reshape(-1, *([1] * (like.ndim - 1)))


def sample_timesteps(
    scheduler: DDPMScheduler, batch_size: int, device: torch.device | str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw one time step per sample from U{0, ..., T-1}."""
    return torch.randint(
        0, scheduler.num_train_timesteps, (batch_size,), device=device, generator=generator, dtype=torch.long
    )


def q_sample(scheduler: DDPMScheduler, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """Eq. 1: ``x_t = sqrt(A_t) x0 + sqrt(1 - A_t) v``."""
    return scheduler.add_noise(original_samples=x0, noise=noise, timesteps=timesteps)


def pure_noise(
    scheduler: DDPMScheduler, shape: torch.Size | tuple, timesteps: torch.Tensor, like: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Noise added to a zero tensor at ``timesteps``: ``sqrt(1 - A_t) v`` (the input that carries no signal)."""
    noise = torch.randn(shape, device=like.device, dtype=like.dtype, generator=generator)
    return _broadcast((1.0 - scheduler.alphas_cumprod) ** 0.5, timesteps, noise) * noise


def predict_x0(
    scheduler: DDPMScheduler, x_t: torch.Tensor, predicted_noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """Eq. 3 (DDPM): ``x0 = sqrt(1 / A_t) x_t - sqrt(1 / A_t - 1) v_hat``."""
    alphas_cumprod = scheduler.alphas_cumprod
    return (
        _broadcast(alphas_cumprod**-0.5, timesteps, x_t) * x_t
        - _broadcast((1.0 / alphas_cumprod - 1.0) ** 0.5, timesteps, x_t) * predicted_noise
    )


def mask_from_noise(
    network: torch.nn.Module, scheduler: DDPMScheduler, image: torch.Tensor, timesteps: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Eq. 5/8: mask logits from the mask pathway, fed the image and a pure-noise mask at ``timesteps``."""
    num_classes = network.num_classes
    noise = pure_noise(scheduler, (image.shape[0], num_classes, *image.shape[2:]), timesteps, image, generator)
    return network(image, noise, timesteps)


def reconstruct_image(
    network: torch.nn.Module, scheduler: DDPMScheduler, noisy_image: torch.Tensor, mask: torch.Tensor,
    timesteps: torch.Tensor, clip: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Eq. 4/6/11: the image pathway's noise prediction turned into an image by Eq. 3, optionally clipped
    to the data range as DDPM samplers do (``clip_denoised``)."""
    image = predict_x0(scheduler, noisy_image, network.image_pathway(noisy_image, mask, timesteps), timesteps)
    return image if clip is None else image.clamp(*clip)


def mask_condition(logits: torch.Tensor, hard: bool = False) -> torch.Tensor:
    """The clean mask given to the image pathway: ``softmax(logits)``, or with ``hard`` the one-hot argmax
    whose gradient is the softmax's (straight-through estimator)."""
    probabilities = torch.softmax(logits, dim=1)
    if not hard:
        return probabilities
    one_hot = torch.zeros_like(probabilities).scatter_(1, probabilities.argmax(dim=1, keepdim=True), 1.0)
    return one_hot + (probabilities - probabilities.detach())
