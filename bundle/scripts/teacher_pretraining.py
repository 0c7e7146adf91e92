"""Stage 1: unsupervised teacher pretraining with the cycle-consistency loss (paper Sec. 3.1, Eq. 5-7)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from monai.engines import SupervisedTrainer
from monai.networks.schedulers import DDPMScheduler
from monai.utils import CommonKeys

from .diffusion import ImageReconstruction, mask_condition, mask_from_noise, sample_timesteps
from .flags import as_bool
from .training_step import autocast, optimizer_step, plain_batch


class TeacherPretrainer(SupervisedTrainer):
    """Trains the dual-pathway teacher on images alone.

    Each iteration: ``m = f_m(i, v_m, t)`` from a pure-noise mask (Eq. 5), then the image pathway reconstructs
    the image given ``softmax(m)`` at an independent ``t'`` (Eq. 6), and ``loss = MSE(i, i')`` (Eq. 7, in the
    image or the noise space of ``reconstruction``); the gradient reaches the mask pathway through
    ``softmax(m)``. ``image_input`` is what the image pathway starts from: ``"noise"``, pure noise as the
    paper's text says, or ``"noised"``, the image noised at ``t'`` (``q(i, t')``), as the authors' code does:
    the mask then only has to carry what the noise destroyed. With ``hard_masks`` the image pathway is
    given ``one_hot(argmax(m))`` instead, with the softmax gradient passed straight through: the mask can
    then carry at most log2(K) bits per pixel and must partition the image into regions rather than encode
    its intensities. Batches must not carry labels: a batch with a ``label`` entry is rejected, so no
    annotation can reach this stage.

    Engine output: ``image``, ``pred`` (mask logits), ``reconstruction``, ``loss`` and ``scalars``
    (values for TensorBoard).

    Args:
        device, max_epochs, train_data_loader, network, optimizer: as for ``SupervisedTrainer``; the loader
            gives unlabeled images.
        noise_scheduler: the DDPM schedule that draws ``t`` and ``t'`` and noises masks and images.
        reconstruction: the loss of Eq. 7 (``ImageReconstruction``: image or noise space).
        image_input: ``"noise"`` (the paper) or ``"noised"`` (the authors' code), as above.
        hard_masks: give the image pathway ``one_hot(argmax(m))`` with a straight-through gradient.
        kwargs: the other ``SupervisedTrainer`` arguments (``prepare_batch``, ``amp``, ``train_handlers``, ...).
    """

    def __init__(
        self,
        device: torch.device | str,
        max_epochs: int,
        train_data_loader: Iterable,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        noise_scheduler: DDPMScheduler,
        reconstruction: ImageReconstruction,
        image_input: str = "noise",
        hard_masks: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=network,
            optimizer=optimizer,
            loss_function=reconstruction,
            decollate=False,
            **kwargs,
        )
        if image_input not in ("noise", "noised"):
            raise ValueError(f"image_input must be 'noise' or 'noised', got {image_input!r}.")
        self.noise_scheduler = noise_scheduler
        self.reconstruction = reconstruction
        self.image_input = image_input
        self.hard_masks = as_bool(hard_masks)

    def checkpoint_state(self) -> dict:
        """What a resumed stage 1 needs of this trainer: the teacher and its optimizer."""
        return {"teacher": self.network, "optimizer": self.optimizer}

    def cycle(self, images: torch.Tensor, condition=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Eq. 5-7 on a batch: the cycle loss, the mask logits and the reconstruction. ``condition`` turns the
        mask logits into the image pathway's mask (default: ``mask_condition`` with ``hard_masks``)."""
        scheduler, network = self.noise_scheduler, self.network
        batch_size = images.shape[0]
        mask_logits = mask_from_noise(network, scheduler, images, sample_timesteps(scheduler, batch_size, images.device))
        mask = condition(mask_logits) if condition is not None else mask_condition(mask_logits, self.hard_masks)
        loss, reconstruction = self.reconstruction(
            network, images, mask, sample_timesteps(scheduler, batch_size, images.device),
            from_pure_noise=self.image_input == "noise",
        )
        return loss.mean(), mask_logits, reconstruction

    def _iteration(self, engine: TeacherPretrainer, batchdata: dict) -> dict:
        if CommonKeys.LABEL in batchdata:
            raise ValueError(
                "teacher pretraining is unsupervised, but its batch carries a 'label' entry: "
                "build the pretraining dataset from images only."
            )
        images, _ = plain_batch(engine, batchdata)
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with autocast(engine):
            loss, mask_logits, reconstruction = engine.cycle(images)
        optimizer_step(engine, images, None, mask_logits, loss, [engine.optimizer])

        engine.state.output = {
            CommonKeys.IMAGE: images,
            CommonKeys.PRED: mask_logits.detach(),
            "reconstruction": reconstruction.detach(),
            CommonKeys.LOSS: loss.detach(),
            "scalars": {"loss/cycle": loss.item(), "lr/teacher": engine.optimizer.param_groups[0]["lr"]},
        }
        return engine.state.output
