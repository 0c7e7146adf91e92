"""Stage 1: unsupervised teacher pretraining with the cycle-consistency loss (paper Sec. 3.1, Eq. 5-7)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from monai.engines import SupervisedTrainer
from monai.networks.schedulers import DDPMScheduler
from monai.utils import CommonKeys

from .diffusion import mask_condition, mask_from_noise, pure_noise, reconstruct_image, sample_timesteps
from .flags import as_bool


class TeacherPretrainer(SupervisedTrainer):
    """Trains the dual-pathway teacher on images alone.

    Each iteration: ``m = f_m(i, v_m, t)`` from a pure-noise mask (Eq. 5), then
    ``i' = f_i(v_i, softmax(m), t')`` from a pure-noise image (Eq. 6), and ``loss = MSE(i, i')`` (Eq. 7);
    the gradient reaches the mask pathway through ``softmax(m)``. With ``hard_masks`` the image pathway is
    given ``one_hot(argmax(m))`` instead, with the softmax gradient passed straight through: the mask can
    then carry at most log2(K) bits per pixel and must partition the image into regions rather than encode
    its intensities. Batches must not carry labels: a batch with a ``label`` entry is rejected, so no
    annotation can reach this stage.

    Engine output: ``image``, ``pred`` (mask logits), ``reconstruction``, ``loss`` and ``scalars``
    (values for TensorBoard).
    """

    def __init__(
        self,
        device: torch.device | str,
        max_epochs: int,
        train_data_loader: Iterable,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        noise_scheduler: DDPMScheduler,
        loss_function: Callable = torch.nn.MSELoss(),
        reconstruction_clip: Sequence[float] | None = None,
        hard_masks: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=network,
            optimizer=optimizer,
            loss_function=loss_function,
            decollate=False,
            **kwargs,
        )
        self.noise_scheduler = noise_scheduler
        self.reconstruction_clip = tuple(reconstruction_clip) if reconstruction_clip is not None else None
        self.hard_masks = as_bool(hard_masks)

    def _iteration(self, engine: TeacherPretrainer, batchdata: dict) -> dict:
        if CommonKeys.LABEL in batchdata:
            raise ValueError(
                "teacher pretraining is unsupervised, but its batch carries a 'label' entry: "
                "build the pretraining dataset from images only."
            )
        images = batchdata[CommonKeys.IMAGE].to(engine.state.device, non_blocking=engine.non_blocking)
        scheduler, network = engine.noise_scheduler, engine.network
        batch_size = images.shape[0]

        network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        mask_timesteps = sample_timesteps(scheduler, batch_size, images.device)
        mask_logits = mask_from_noise(network, scheduler, images, mask_timesteps)
        image_timesteps = sample_timesteps(scheduler, batch_size, images.device)
        noisy_image = pure_noise(scheduler, images.shape, image_timesteps, images)
        reconstruction = reconstruct_image(
            network, scheduler, noisy_image, mask_condition(mask_logits, engine.hard_masks), image_timesteps,
            engine.reconstruction_clip,
        )
        loss = engine.loss_function(reconstruction, images)
        loss.backward()
        engine.optimizer.step()

        engine.state.output = {
            CommonKeys.IMAGE: images,
            CommonKeys.PRED: mask_logits.detach(),
            "reconstruction": reconstruction.detach(),
            CommonKeys.LOSS: loss.detach(),
            "scalars": {"loss/cycle": loss.item(), "lr/teacher": engine.optimizer.param_groups[0]["lr"]},
        }
        return engine.state.output
