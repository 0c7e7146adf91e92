"""The loop every baseline shares: supervised loss + lambda(epoch) * unsupervised terms."""

from __future__ import annotations

import torch
from monai.inferers import Inferer
from monai.networks.schedulers import DDPMScheduler

from ..diffusion import pure_noise, sample_timesteps
from ..inferers import RandomTimestepInferer
from ..networks import unwrap
from ..training_step import autocast, optimizer_step
from ..semi_supervised import SemiSupervisedTrainer


class BaselineTrainer(SemiSupervisedTrainer):
    """Subclasses define ``losses(images, labels, num_labeled)`` returning the trained network's logits
    for the whole batch, the supervised loss and a dict of unsupervised terms; ``after_step`` runs after
    the optimizer step (e.g. an EMA update). ``optimizer`` covers every trained module.

    Args:
        args, kwargs: as for ``SemiSupervisedTrainer``.
        noise_scheduler: the DDPM schedule whose pure-noise mask the mask pathway starts from (Eq. 8).
        inferer: the training forward of every network (``segment``); default ``RandomTimestepInferer``.
    """

    def __init__(self, *args, noise_scheduler: DDPMScheduler, inferer: Inferer | None = None, **kwargs) -> None:
        super().__init__(*args, inferer=inferer or RandomTimestepInferer(noise_scheduler), **kwargs)
        self.noise_scheduler = noise_scheduler

    def segment(self, network: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Class logits of ``network``'s training forward, the engine's inferer: by default the mask pathway
        from a pure-noise mask at a random time step per image."""
        return self.inferer(images, network)

    def segment_with_features(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, list[torch.Tensor], torch.Tensor], list[torch.Tensor]]:
        """``segment`` for ``network`` through its stages (``DualPathwayDiffusionUNet.mask_features``): the
        logits, the encoder's (bottleneck, skips, embedding) and the features entering each decoder up block."""
        scheduler = self.noise_scheduler
        timesteps = sample_timesteps(scheduler, images.shape[0], images.device)
        shape = (images.shape[0], unwrap(self.network).num_classes, *images.shape[2:])
        return self.network(images, pure_noise(scheduler, shape, timesteps, images), timesteps, pathway="mask_features")

    def losses(
        self, images: torch.Tensor, labels: torch.Tensor, num_labeled: int
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def after_step(self) -> None:
        """Called after every optimizer step."""

    def _iteration(self, engine: BaselineTrainer, batchdata: dict) -> dict:
        images, labels, num_labeled = engine.mixed_batch(batchdata)
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with autocast(engine):
            logits, supervised, terms = engine.losses(images, labels, num_labeled)
        weight = float(engine.consistency_weight(engine.state.epoch))
        loss = supervised + weight * torch.stack(list(terms.values())).sum()
        optimizer_step(engine, images, labels, logits, loss, [engine.optimizer])
        engine.after_step()
        pseudo_labels = logits.argmax(dim=1, keepdim=True).detach()
        shown_labels = torch.cat([labels.to(pseudo_labels.dtype), pseudo_labels[num_labeled:]])
        return engine.publish(
            images=images, labels=shown_labels, logits=logits, loss=loss, weight=weight,
            terms={"supervised": supervised, **terms}, optimizers={"network": engine.optimizer},
        )
