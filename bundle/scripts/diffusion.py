"""Forward noising and its inverse (paper Eq. 1 and 3) on top of MONAI's ``DDPMScheduler``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.schedulers import DDPMScheduler

from .flags import as_bool
from .networks import unwrap


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


def implied_noise(
    scheduler: DDPMScheduler, x_t: torch.Tensor, x0: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """Eq. 1 solved for the noise: ``v = (x_t - sqrt(A_t) x0) / sqrt(1 - A_t)``, the noise that takes ``x0``
    to ``x_t`` (exactly the drawn noise when ``x_t = q(x0, t)``)."""
    alphas_cumprod = scheduler.alphas_cumprod
    return (x_t - _broadcast(alphas_cumprod**0.5, timesteps, x_t) * x0) * _broadcast(
        (1.0 - alphas_cumprod) ** -0.5, timesteps, x_t
    )


def mask_from_noise(
    network: torch.nn.Module, scheduler: DDPMScheduler, image: torch.Tensor, timesteps: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Eq. 5/8: mask logits from the mask pathway, fed the image and a pure-noise mask at ``timesteps``."""
    num_classes = unwrap(network).num_classes
    noise = pure_noise(scheduler, (image.shape[0], num_classes, *image.shape[2:]), timesteps, image, generator)
    return network(image, noise, timesteps)


def reconstruction_loss(
    scheduler: DDPMScheduler, image: torch.Tensor, noisy_image: torch.Tensor, predicted_noise: torch.Tensor,
    timesteps: torch.Tensor, space: str = "image", clip: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Eq. 7/14, ``MSE(i, i_hat)`` per sample (shape ``(N,)``), in one of two spaces:

    * ``"image"``: between the image and its reconstruction by Eq. 3, clipped to ``clip`` when given;
    * ``"noise"``: between the predicted noise and the noise that takes the image to ``noisy_image``, the
      usual DDPM objective. It is the image-space error weighted by ``A_t / (1 - A_t)`` per sample, so large
      time steps, where Eq. 3 multiplies the predicted noise by up to ``sqrt(1 / A_t - 1)``, do not dominate.
    """
    if space == "noise":
        return _per_sample_mse(predicted_noise, implied_noise(scheduler, noisy_image, image, timesteps))
    if space != "image":
        raise ValueError(f"reconstruction loss space must be 'image' or 'noise', got {space!r}.")
    reconstruction = predict_x0(scheduler, noisy_image, predicted_noise, timesteps)
    if clip is not None:
        reconstruction = reconstruction.clamp(*clip)
    return _per_sample_mse(reconstruction, image)


def _per_sample_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b) ** 2).flatten(1).mean(dim=1)


class ImageReconstruction:
    """The image pathway's half of the cycle (Eq. 6/11 and 7/14): reconstruct an image given a mask from the
    image noised at ``t`` (``q(i, t)``), or from pure noise at ``t`` (``from_pure_noise``), and measure it.

    ``space`` and ``clip`` are those of ``reconstruction_loss``; the clip always applies to the returned
    reconstruction (what figures show and later rounds see) and to the image-space loss only when
    ``clip_in_loss``: the clamp has zero gradient exactly where the errors are largest.
    """

    def __init__(
        self, noise_scheduler: DDPMScheduler, space: str = "image", clip: Sequence[float] | None = (-1.0, 1.0),
        clip_in_loss: bool = True,
    ) -> None:
        if space not in ("image", "noise"):
            raise ValueError(f"reconstruction space must be 'image' or 'noise', got {space!r}.")
        self.noise_scheduler = noise_scheduler
        self.space = space
        self.clip = tuple(clip) if clip is not None else None
        self.clip_in_loss = as_bool(clip_in_loss)

    def __call__(
        self, network: torch.nn.Module, image: torch.Tensor, mask: torch.Tensor, timesteps: torch.Tensor,
        from_pure_noise: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-sample reconstruction loss and the (clipped) reconstruction."""
        scheduler = self.noise_scheduler
        source = torch.zeros_like(image) if from_pure_noise else image
        noisy_image = q_sample(scheduler, source, torch.randn_like(image), timesteps)
        predicted_noise = network(noisy_image, mask, timesteps, pathway="image")
        reconstruction = predict_x0(scheduler, noisy_image, predicted_noise, timesteps)
        if self.clip is not None:
            reconstruction = reconstruction.clamp(*self.clip)
        loss = reconstruction_loss(
            scheduler, image, noisy_image, predicted_noise, timesteps, self.space,
            self.clip if self.clip_in_loss else None,
        )
        return loss, reconstruction


def mask_condition(logits: torch.Tensor, hard: bool = False) -> torch.Tensor:
    """The clean mask given to the image pathway: ``softmax(logits)``, or with ``hard`` the one-hot argmax
    whose gradient is the softmax's (straight-through estimator)."""
    probabilities = torch.softmax(logits, dim=1)
    if not hard:
        return probabilities
    one_hot = torch.zeros_like(probabilities).scatter_(1, probabilities.argmax(dim=1, keepdim=True), 1.0)
    return one_hot + (probabilities - probabilities.detach())
